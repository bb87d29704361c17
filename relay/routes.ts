// The routing table indexed the ways the packet path needs it: by transceiver ID (a new flow's
// ufrag names one), by peer cluster (a ufrag of another cluster: the global relay tier), by tunnel
// address (a datagram from a transceiver or a peer's relay must come from a known one), and the
// edge relays whose tunnel datagrams this relay accepts on its public port.
import { type AddressFamily, addressKey, type TransportAddress } from '../protocol/address.ts';
import { type Cidr, CidrSet } from '../protocol/cidr.ts';
import type { TransceiverEntry, TransceiverState } from '../protocol/routing-table.ts';
import { SLOT } from './counters.ts';
import { type PeerSpec, pickPeerRelay } from './peer-routes.ts';

export interface Route {
  /** The transceiver; -1 on a peer route. */
  readonly transceiverId: number;
  /** Where tunnel datagrams go: the transceiver's tunnel socket, or a peer relay's public address. */
  readonly tunnel: TransportAddress;
  readonly state: TransceiverState;
  /** Unix seconds; set when draining: ufrags issued after it (plus clock tolerance) get no new flows. */
  readonly drainingSince: number | undefined;
  /** The peer cluster this route forwards to (global relay tier); undefined for a transceiver. */
  readonly peerCluster: number | undefined;
  /**
   * Who may answer for a flow on this route: the transceiver ID, or -1 - clusterId for any relay of
   * a peer cluster. A tunnel datagram is delivered only if its sender's owner is the flow's.
   */
  readonly owner: number;
  /** Counter slots of the client packets forwarded on this route (to a transceiver, or to a peer). */
  readonly packetsSlot: number;
  readonly bytesSlot: number;
}

export interface RoutesInput {
  readonly generation: number;
  readonly transceivers: readonly TransceiverEntry[];
  /** Peer clusters, already merged from configuration and table (mergePeers). */
  readonly peers?: readonly PeerSpec[];
  /** Edge relays allowed to send tunnel datagrams to the public port (mergeEdgeSources). */
  readonly edgeRelays?: readonly Cidr[];
}

const ALL_FAMILIES: ReadonlySet<AddressFamily> = new Set([4, 6]);

export class Routes {
  readonly generation: number;
  readonly #byId = new Map<number, Route>();
  readonly #byTunnel = new Map<string, Route>();
  readonly #peers = new Map<number, PeerSpec>();
  /** Peer routes by relay address key. */
  readonly #peerRoutes = new Map<string, Route>();
  readonly #families: ReadonlySet<AddressFamily>;
  readonly edgeSources: CidrSet;

  /**
   * `nowMs` and `previous` fill in drainingSince when the table does not say: the moment this relay
   * first saw the transceiver draining (kept across later tables while it stays draining).
   * `families`: the address families this relay has tunnel sockets for (peer relays of other
   * families are never picked).
   */
  constructor(
    table: RoutesInput,
    nowMs: number,
    previous?: Routes,
    families: ReadonlySet<AddressFamily> = ALL_FAMILIES,
  ) {
    this.generation = table.generation;
    this.#families = families;
    this.edgeSources = new CidrSet(table.edgeRelays ?? []);
    for (const peer of table.peers ?? []) {
      if (this.#peers.has(peer.clusterId)) continue;
      this.#peers.set(peer.clusterId, peer);
      for (const relay of peer.relays) {
        const key = addressKey(relay.address, relay.port);
        if (this.#peerRoutes.has(key)) continue;
        const route: Route = {
          transceiverId: -1,
          tunnel: relay,
          state: 'active',
          drainingSince: undefined,
          peerCluster: peer.clusterId,
          owner: -1 - peer.clusterId,
          packetsSlot: SLOT.packetsToPeer,
          bytesSlot: SLOT.bytesToPeer,
        };
        this.#peerRoutes.set(key, route);
        this.#byTunnel.set(key, route);
      }
    }
    for (const entry of table.transceivers) {
      let drainingSince: number | undefined;
      if (entry.state === 'draining') {
        drainingSince =
          entry.drainingSince ?? previous?.byId(entry.id)?.drainingSince ?? Math.floor(nowMs / 1000);
      }
      const route: Route = {
        transceiverId: entry.id,
        tunnel: entry.tunnel,
        state: entry.state,
        drainingSince,
        peerCluster: undefined,
        owner: entry.id,
        packetsSlot: SLOT.packetsToTransceiver,
        bytesSlot: SLOT.bytesToTransceiver,
      };
      this.#byId.set(entry.id, route);
      // A transceiver and a peer relay at one address cannot both be right; the transceiver wins.
      this.#byTunnel.set(addressKey(entry.tunnel.address, entry.tunnel.port), route);
    }
  }

  byId(transceiverId: number): Route | undefined {
    return this.#byId.get(transceiverId);
  }

  byTunnel(address: string, port: number): Route | undefined {
    return this.#byTunnel.get(addressKey(address, port));
  }

  /** The route for a session of peer cluster `clusterId` from the client at `clientKey`. */
  peerFor(clusterId: number, clientKey: string): Route | undefined {
    const peer = this.#peers.get(clusterId);
    if (peer === undefined) return undefined;
    const relay = pickPeerRelay(peer.relays, clientKey, this.#families);
    return relay === undefined ? undefined : this.#peerRoutes.get(addressKey(relay.address, relay.port));
  }

  /** True if `clusterId` is a peer cluster (whether or not one of its relays is usable). */
  hasPeer(clusterId: number): boolean {
    return this.#peers.has(clusterId);
  }

  /** The same route in this table: by transceiver ID, or for a peer route re-picked for the client. */
  remap(route: Route, clientKey: string): Route | undefined {
    return route.peerCluster === undefined
      ? this.byId(route.transceiverId)
      : this.peerFor(route.peerCluster, clientKey);
  }

  /** Transceivers in the table. */
  get size(): number {
    return this.#byId.size;
  }

  get peerCount(): number {
    return this.#peers.size;
  }
}
