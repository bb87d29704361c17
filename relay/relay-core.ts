// The relay's decisions as functions of (packet, address, time, state): no sockets, no clocks, no
// Redis. A worker feeds it datagrams and carries out what it returns; tests and benchmarks call it
// directly.
//
// Client side: a known address is forwarded without parsing (a STUN Binding request naming another
// ufrag excepted: the client started a new session from the same port). An unknown address creates
// a flow only with a STUN Binding request whose ufrag tag verifies, names this cluster and a known
// transceiver, and whose MESSAGE-INTEGRITY verifies with the password derived from the ufrag.
// DTLS/RTP from an unknown address asks the flow cache (Redis) when there is one.
//
// Tunnel side: a datagram is accepted only from a transceiver's tunnel address in the routing table,
// and only for a client that has a flow to that same transceiver.
import { type AddressFamily, addressKey } from '../protocol/address.ts';
import { parseStun, readReceiverUfrag, StunType, verifyMessageIntegrity } from '../protocol/stun.ts';
import { decodeTunnelPacket, encodeTunnelHeader } from '../protocol/tunnel.ts';
import { decodeUfrag, deriveIcePassword, type RoutingKeyring } from '../protocol/ufrag.ts';
import { type DropReason, dropSlotOf, SLOT } from './counters.ts';
import type { Flow, FlowTable } from './flow-table.ts';
import type { Routes } from './routes.ts';
import type { SourceRateLimiter } from './source-rate-limiter.ts';

/**
 * Transceivers mint ufrags with their clock, the operator (or this relay) dates the drain with its own:
 * a session issued up to this long after the drain began is still treated as an existing one.
 */
export const DRAIN_CLOCK_TOLERANCE_S = 10;

/** What to do with a client's packet: forward on the flow, drop (already counted), or ask the cache. */
export type ClientDecision = Flow | DropReason | 'lookup';

/** What to do with a tunnel datagram: send `datagram.subarray(flow.header.length)` to the flow's client. */
export type TunnelDecision = Flow | DropReason;

export interface RelayCoreOptions {
  readonly clusterId: number;
  readonly keyring: RoutingKeyring;
  readonly routes: Routes;
  readonly flows: FlowTable;
  readonly newFlowLimiter: SourceRateLimiter;
  readonly counters: Float64Array;
  /** True when a flow cache can be asked about unknown addresses. */
  readonly recovery: boolean;
}

export class RelayCore {
  readonly clusterId: number;
  readonly flows: FlowTable;
  readonly counters: Float64Array;
  readonly recovery: boolean;
  #keyring: RoutingKeyring;
  #routes: Routes;
  readonly #newFlowLimiter: SourceRateLimiter;
  #draining = false;
  /** Flows created since the cache writer last took them. */
  #unrecorded: Flow[] = [];

  constructor(options: RelayCoreOptions) {
    this.clusterId = options.clusterId;
    this.#keyring = options.keyring;
    this.#routes = options.routes;
    this.flows = options.flows;
    this.#newFlowLimiter = options.newFlowLimiter;
    this.counters = options.counters;
    this.recovery = options.recovery;
    this.counters[SLOT.routingTableGeneration] = options.routes.generation;
  }

  get routes(): Routes {
    return this.#routes;
  }

  get draining(): boolean {
    return this.#draining;
  }

  #drop(reason: DropReason): DropReason {
    this.counters[dropSlotOf(reason)]!++;
    return reason;
  }

  onClientPacket(
    packet: Buffer,
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    now: number,
  ): ClientDecision {
    const key = addressKey(address, port);
    const flow = this.flows.get(key);
    const first = packet[0];
    if (flow !== undefined) {
      if (first !== undefined && first < 4 && this.#namesOtherUfrag(packet, flow)) {
        return this.#newFlowFromStun(packet, key, address, family, port, socketIndex, now);
      }
      flow.lastSeen = now;
      this.counters[SLOT.packetsToTransceiver]!++;
      this.counters[SLOT.bytesToTransceiver]! += packet.length;
      return flow;
    }
    if (first === undefined) return this.#drop('unclassified');
    if (first < 4) return this.#newFlowFromStun(packet, key, address, family, port, socketIndex, now);
    const isDtlsOrRtp = (first >= 20 && first <= 63) || (first >= 128 && first <= 191);
    if (!isDtlsOrRtp) return this.#drop('unclassified');
    if (this.recovery && !this.#draining) return 'lookup';
    return this.#drop('unknown_flow');
  }

  /** A Binding request from a known address whose USERNAME names a different server ufrag. */
  #namesOtherUfrag(packet: Buffer, flow: Flow): boolean {
    const parsed = parseStun(packet);
    if (!parsed.ok || parsed.message.type !== StunType.BindingRequest) return false;
    const ufrag = readReceiverUfrag(parsed.message);
    return ufrag !== undefined && ufrag !== flow.ufrag;
  }

  #newFlowFromStun(
    packet: Buffer,
    key: string,
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    now: number,
  ): ClientDecision {
    if (this.#draining) return this.#drop('relay_draining');
    const parsed = parseStun(packet);
    if (!parsed.ok) return this.#drop('malformed_stun');
    if (parsed.message.type !== StunType.BindingRequest) return this.#drop('not_binding_request');
    const ufrag = readReceiverUfrag(parsed.message);
    if (ufrag === undefined) return this.#drop('no_username');
    const decoded = decodeUfrag(ufrag, this.#keyring);
    if (!decoded.ok) {
      if (decoded.reason === 'unknown-key') return this.#drop('unknown_key');
      if (decoded.reason === 'bad-tag') return this.#drop('bad_tag');
      return this.#drop('bad_ufrag');
    }
    const { fields } = decoded;
    if (fields.clusterId !== this.clusterId) return this.#drop('wrong_cluster');
    const route = this.#routes.byId(fields.transceiverId);
    if (route === undefined) return this.#drop('unknown_transceiver');
    // A draining transceiver keeps its sessions (they may still move to new addresses) but gets no new ones:
    // the ufrag's issue time tells which is which, on any relay, with no shared state.
    if (
      route.drainingSince !== undefined &&
      fields.issuedAt > route.drainingSince + DRAIN_CLOCK_TOLERANCE_S
    ) {
      return this.#drop('transceiver_draining');
    }
    const password = deriveIcePassword(ufrag, this.#keyring.get(fields.keyId)!);
    if (!verifyMessageIntegrity(parsed.message, password)) return this.#drop('bad_integrity');
    if (!this.#newFlowLimiter.allow(address, now)) return this.#drop('rate_limited');
    if (!this.flows.hasRoomFor(key)) return this.#drop('flow_table_full');
    const flow = this.#createFlow(key, address, family, port, socketIndex, ufrag, route, now);
    if (this.recovery) this.#unrecorded.push(flow);
    this.counters[SLOT.flowsCreatedStun]!++;
    this.counters[SLOT.packetsToTransceiver]!++;
    this.counters[SLOT.bytesToTransceiver]! += packet.length;
    return flow;
  }

  #createFlow(
    key: string,
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    ufrag: string,
    route: Flow['route'],
    now: number,
  ): Flow {
    const client = { family, address, port };
    const flow: Flow = {
      key,
      client,
      socketIndex,
      ufrag,
      route,
      header: encodeTunnelHeader(client),
      lastSeen: now,
      recordedAt: 0,
    };
    this.flows.set(flow);
    this.counters[SLOT.flows] = this.flows.size;
    return flow;
  }

  /**
   * The cache said `ufrag` owns this address. The record is re-verified (a tag check costs one HMAC)
   * so a stale or tampered record cannot route anywhere a ufrag could not.
   */
  recoverFlow(
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    ufrag: string,
    now: number,
  ): Flow | DropReason {
    const key = addressKey(address, port);
    const existing = this.flows.get(key);
    if (existing !== undefined) return existing;
    // A lookup started before startDraining() may answer after it: no new flows while draining.
    if (this.#draining) return this.#drop('relay_draining');
    const decoded = decodeUfrag(ufrag, this.#keyring);
    if (!decoded.ok || decoded.fields.clusterId !== this.clusterId) return this.#drop('redis_miss');
    const route = this.#routes.byId(decoded.fields.transceiverId);
    if (route === undefined) return this.#drop('unknown_transceiver');
    if (!this.flows.hasRoomFor(key)) return this.#drop('flow_table_full');
    const flow = this.#createFlow(key, address, family, port, socketIndex, ufrag, route, now);
    flow.recordedAt = now;
    this.counters[SLOT.flowsCreatedRedis]!++;
    return flow;
  }

  /** Counts a client packet forwarded after recovery (onClientPacket counted it as 'lookup'). */
  countForwarded(packet: Buffer): void {
    this.counters[SLOT.packetsToTransceiver]!++;
    this.counters[SLOT.bytesToTransceiver]! += packet.length;
  }

  onTunnelPacket(datagram: Buffer, fromAddress: string, fromPort: number): TunnelDecision {
    const route = this.#routes.byTunnel(fromAddress, fromPort);
    if (route === undefined) return this.#drop('tunnel_unknown_source');
    const decoded = decodeTunnelPacket(datagram);
    if (!decoded.ok) return this.#drop('tunnel_malformed');
    const { client } = decoded.packet;
    const flow = this.flows.get(addressKey(client.address, client.port));
    if (flow === undefined || flow.route.transceiverId !== route.transceiverId)
      return this.#drop('tunnel_no_flow');
    this.counters[SLOT.packetsToClient]!++;
    this.counters[SLOT.bytesToClient]! += decoded.packet.payload.length;
    return flow;
  }

  /** Counts a failed send as a drop. */
  countSendError(): void {
    this.#drop('send_error');
  }

  /** Counts a drop decided outside the core (the cache path). */
  countDrop(reason: DropReason): void {
    this.#drop(reason);
  }

  setRoutes(routes: Routes): void {
    this.#routes = routes;
    for (const flow of this.flows.values()) {
      const route = routes.byId(flow.route.transceiverId);
      if (route === undefined) {
        this.flows.delete(flow.key);
        this.counters[SLOT.flowsRemoved]!++;
      } else {
        flow.route = route;
      }
    }
    this.counters[SLOT.flows] = this.flows.size;
    this.counters[SLOT.routingTableGeneration] = routes.generation;
  }

  setKeyring(keyring: RoutingKeyring): void {
    this.#keyring = keyring;
  }

  /** Stops creating flows (STUN and cache); existing flows keep forwarding. */
  startDraining(): void {
    this.#draining = true;
  }

  /** Housekeeping, called about once a second. */
  tick(now: number): void {
    const expired = this.flows.expire(now);
    this.counters[SLOT.flowsExpired]! += expired;
    this.counters[SLOT.flows] = this.flows.size;
    this.#newFlowLimiter.sweep(now);
  }

  /** Flows created since the last call, for the cache writer; each is handed out once. */
  takeUnrecorded(): Flow[] {
    const taken = this.#unrecorded;
    this.#unrecorded = [];
    return taken.filter((flow) => this.flows.get(flow.key) === flow);
  }
}
