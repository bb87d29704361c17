// The global relay tier's routing decisions, pure (docs/global-tier.md): which peer
// cluster a session of another cluster goes to, through which of that cluster's relays, and which
// sources may send edge-tunnel datagrams to this relay.
import type { AddressFamily, TransportAddress } from '../protocol/address.ts';
import type { Cidr } from '../protocol/cidr.ts';
import type { RoutingTable } from '../protocol/routing-table.ts';

/** A peer cluster as configuration and routing tables describe it. */
export interface PeerSpec {
  readonly clusterId: number;
  /** The peer's relays: where this relay sends the peer's sessions (its public addresses). */
  readonly relays: readonly TransportAddress[];
  readonly region?: string | undefined;
}

/**
 * The peers a relay forwards to: its configuration's, then the routing table's (the operator
 * publishes `VoiceEdgeCluster.spec.peers` there). For a cluster listed by both, the configuration
 * wins: it is how an operator points one relay at a private backbone address. Within one list the
 * first entry for a cluster wins. `self` (this relay's own cluster, if it has one) is never a peer.
 */
export function mergePeers(
  fromConfig: readonly PeerSpec[],
  fromTable: readonly PeerSpec[],
  self: number | undefined,
): PeerSpec[] {
  const merged = new Map<number, PeerSpec>();
  for (const peer of [...fromConfig, ...fromTable]) {
    if (peer.clusterId === self || merged.has(peer.clusterId)) continue;
    merged.set(peer.clusterId, peer);
  }
  return [...merged.values()];
}

/** The edge relays a cluster relay accepts tunnel datagrams from: configuration ∪ routing table. */
export function mergeEdgeSources(fromConfig: readonly Cidr[], fromTable: readonly Cidr[]): Cidr[] {
  return [...fromConfig, ...fromTable];
}

/** FNV-1a over the text: a cheap, stable spread of clients over a peer's relays. */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The relay of a peer cluster that a client's flow goes through: one this relay can send to (a
 * family it has a tunnel socket for), chosen by a hash of the client's address so that a client
 * keeps its relay while the peer's list stays the same, and clients spread over the peer's relays.
 */
export function pickPeerRelay(
  relays: readonly TransportAddress[],
  clientKey: string,
  families: ReadonlySet<AddressFamily>,
): TransportAddress | undefined {
  const usable = relays.filter((relay) => families.has(relay.family));
  if (usable.length === 0) return undefined;
  return usable[stableHash(clientKey) % usable.length];
}

/** What a relay is: a cluster's relay (delivers its own sessions, forwards peers'), or an edge relay. */
export interface RelayRole {
  readonly mode: 'cluster' | 'edge';
  /** The cluster this relay belongs to (cluster mode); an edge relay may name the table it follows. */
  readonly clusterId?: number | undefined;
  readonly peers: readonly PeerSpec[];
  readonly edgeRelays: readonly Cidr[];
}

/** The parts of a routing table the relay routes with (the table is optional for an edge relay). */
export interface TableView {
  readonly generation: number;
  readonly transceivers: readonly RoutesTransceiver[];
  readonly peers: readonly PeerSpec[];
  readonly edgeRelays: readonly Cidr[];
}
type RoutesTransceiver = RoutingTable['transceivers'][number];

/**
 * The routes a relay uses, from its role and its routing table (if any). An edge relay delivers to
 * no transceiver: every session is a peer cluster's, and it accepts no edge traffic itself unless
 * configured to. A cluster relay delivers its cluster's sessions and forwards its peers'.
 */
export function routesInputFor(role: RelayRole, table: TableView | undefined) {
  const self = role.mode === 'cluster' ? role.clusterId : undefined;
  return {
    generation: table?.generation ?? 0,
    transceivers: role.mode === 'cluster' ? (table?.transceivers ?? []) : [],
    peers: mergePeers(role.peers, table?.peers ?? [], self),
    edgeRelays: mergeEdgeSources(role.edgeRelays, table?.edgeRelays ?? []),
  };
}

/** The cluster ID the relay core matches ufrags against: none (-1) for an edge relay. */
export function localClusterOf(role: Pick<RelayRole, 'mode' | 'clusterId'>): number {
  return role.mode === 'cluster' && role.clusterId !== undefined ? role.clusterId : -1;
}
