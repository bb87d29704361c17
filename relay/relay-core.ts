// The relay's decisions as functions of (packet, address, time, state): no sockets, no clocks, no
// Redis. A worker feeds it datagrams and carries out what it returns; tests and benchmarks call it
// directly.
//
// Client side: a known address is forwarded without parsing (a STUN Binding request naming another
// ufrag excepted: the client started a new session from the same port). An unknown address creates
// a flow only with a STUN Binding request whose ufrag tag verifies, names this cluster and a known
// transceiver, and whose MESSAGE-INTEGRITY verifies with the password derived from the ufrag.
// DTLS/RTP from an unknown address asks the flow cache (Redis) when there is one: the core decides
// whether to ask, holds the packets meanwhile and decides what the answer means; the worker only
// carries the question to Redis and the answer back (LookupRequest, settleLookup).
//
// Tunnel side: a datagram is accepted only from a transceiver's tunnel address in the routing table,
// and only for a client that has a flow to that same transceiver.
//
// NAT rebinding (docs/relay.md): SRTP from an unknown address whose SSRC a flow's client sent last is
// forwarded to that flow's transceiver as a candidate new path (no flow yet: the relay cannot verify
// SRTP). The transceiver authenticates it; its first datagram to the new address is what makes the flow.
//
// ICE-TCP (docs/reaching-the-edge.md): a TCP connection is one flow, made by its first packet under
// the same checks as a UDP flow's first STUN request; it is keyed apart from UDP (tcpAddressKey), never
// recorded in the flow cache (a connection cannot move to another relay), and ends with the connection.
//
// Global relay tier (docs/global-tier.md): a ufrag naming a peer cluster makes a flow to one of that
// cluster's relays (this relay is then the client's edge relay), after the same tag and integrity
// checks; the peer's relay checks everything again. A tunnel datagram arriving on the public port
// from a known edge relay is handled like a client packet of the client its header names, and the
// flow remembers the edge so that replies go back through it.
import { type AddressFamily, addressKey, clientKey, tcpAddressKey } from '../protocol/address.ts';
import { classifyPacket } from '../protocol/packet-kind.ts';
import { rtpSsrc } from '../protocol/rtp-header.ts';
import { parseStun, readReceiverUfrag, StunType, verifyMessageIntegrity } from '../protocol/stun.ts';
import { decodeTunnelPacket, encodeTunnelHeader } from '../protocol/tunnel.ts';
import { decodeUfrag, deriveIcePassword, type RoutingKeyring } from '../protocol/ufrag.ts';
import { type DropReason, dropSlotOf, SLOT } from './counters.ts';
import type { EdgeHop, Flow, FlowTable } from './flow-table.ts';
import { type PathCandidate, PathCandidates } from './path-candidates.ts';
import { PendingLookups, type PendingLookupsOptions } from './pending-lookups.ts';
import type { Route, Routes } from './routes.ts';
import type { SourceRateLimiter } from './source-rate-limiter.ts';

/**
 * Transceivers mint ufrags with their clock, the operator (or this relay) dates the drain with its own:
 * a session issued up to this long after the drain began is still treated as an existing one.
 */
export const DRAIN_CLOCK_TOLERANCE_S = 10;

/**
 * STUN a known flow may forward: ICE agents send a check per pair every 20–50 ms at most while
 * connecting and one every few seconds after (consent, RFC 7675); past this a flow is flooding its
 * transceiver, and the excess is dropped here, before the tunnel.
 */
export const FLOW_STUN_PER_SECOND = 50;
export const FLOW_STUN_BURST = 100;

/** Ask the flow cache who owns this address (or this SSRC); the packet is held until settleLookup. */
export class LookupRequest {
  /** The held packets' key: settleLookup takes it back with the answer. */
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** The first packet's SSRC when it is RTP: a session that moved is found by it. */
  readonly ssrc: number | undefined;

  constructor(key: string, address: string, port: number, ssrc: number | undefined) {
    this.key = key;
    this.address = address;
    this.port = port;
    this.ssrc = ssrc;
  }
}

/** Where packets go: a flow, or a candidate path's transceiver (both carry `route` and `header`). */
export type ForwardTarget = Flow | PathCandidate;

/**
 * What to do with a client's packet: forward to the target, drop (already counted), hold it for a
 * lookup under way ('held'), or start one (LookupRequest: the packet is held too).
 */
export type ClientDecision = ForwardTarget | DropReason | 'held' | LookupRequest;

/** The flow cache's answer: a record found (by address or by SSRC), none, or Redis failed. */
export type LookupAnswer = { readonly ufrag: string; readonly by: 'address' | 'ssrc' } | null | 'error';

/** Default bounds of the lookups (the relay config's `redis.*` defaults). */
const DEFAULT_LOOKUPS: PendingLookupsOptions = {
  maxConcurrent: 256,
  lookupsPerSourcePerSecond: 5,
  negativeCacheMs: 5_000,
};

/**
 * What to do with a tunnel datagram: send `datagram.subarray(flow.header.length)` to the flow's
 * client, or, when the flow came through an edge relay (`flow.via`), the whole datagram to the edge.
 */
export type TunnelDecision = Flow | DropReason;

export interface RelayCoreOptions {
  /** This relay's cluster; -1 for an edge relay with no cluster of its own (every session is a peer's). */
  readonly clusterId: number;
  readonly keyring: RoutingKeyring;
  readonly routes: Routes;
  readonly flows: FlowTable;
  readonly newFlowLimiter: SourceRateLimiter;
  readonly counters: Float64Array;
  /** True when a flow cache can be asked about unknown addresses. */
  readonly recovery: boolean;
  /** Bounds of the cache lookups (with recovery); the config's defaults when not given. */
  readonly lookups?: PendingLookupsOptions;
  /** Candidate new paths (NAT rebinding); default limits when not given. */
  readonly candidates?: PathCandidates;
}

export class RelayCore {
  readonly clusterId: number;
  readonly flows: FlowTable;
  readonly counters: Float64Array;
  #keyring: RoutingKeyring;
  #routes: Routes;
  readonly #newFlowLimiter: SourceRateLimiter;
  #draining = false;
  readonly candidates: PathCandidates;
  /** The flow cache's lookups held: present exactly when there is a cache (recovery). */
  readonly #lookups: PendingLookups | undefined;
  /** Flows created (or given an SSRC) since the cache writer last took them. */
  #unrecorded = new Set<Flow>();

  constructor(options: RelayCoreOptions) {
    this.clusterId = options.clusterId;
    this.#keyring = options.keyring;
    this.#routes = options.routes;
    this.flows = options.flows;
    this.#newFlowLimiter = options.newFlowLimiter;
    this.counters = options.counters;
    this.candidates = options.candidates ?? new PathCandidates();
    this.#lookups = options.recovery ? new PendingLookups(options.lookups ?? DEFAULT_LOOKUPS) : undefined;
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
    const kind = classifyPacket(packet);
    if (flow !== undefined) {
      if (kind === 'stun') {
        if (!takeStunToken(flow, now)) return this.#drop('flow_stun_rate_limited');
        if (this.#namesOtherUfrag(packet, flow))
          return this.#newFlowFromStun(packet, key, address, family, port, socketIndex, undefined, now);
      }
      if (flow.via !== undefined) {
        // The client now sends here directly: replies follow its latest path.
        flow.via = undefined;
        flow.socketIndex = socketIndex;
      }
      this.#noteSsrc(flow, packet);
      flow.lastSeen = now;
      this.counters[flow.route.packetsSlot]!++;
      this.counters[flow.route.bytesSlot]! += packet.length;
      return flow;
    }
    if (kind === 'stun')
      return this.#newFlowFromStun(packet, key, address, family, port, socketIndex, undefined, now);
    if (kind !== 'dtls' && kind !== 'rtp') return this.#drop('unclassified');
    const client = { family, address, port };
    const candidate = this.#candidatePath(packet, key, client, socketIndex, undefined, now);
    if (candidate !== undefined) return candidate;
    return this.#lookupOrDrop(packet, key, client, socketIndex, undefined, now);
  }

  /** Media from an address no flow has: held for a flow cache lookup, or dropped without a cache. */
  #lookupOrDrop(
    packet: Buffer,
    key: string,
    client: PathCandidate['client'],
    socketIndex: number,
    via: EdgeHop | undefined,
    now: number,
  ): ClientDecision {
    const lookups = this.#lookups;
    // The cache knows UDP flows only: a TCP client's connection ended with the relay that held it.
    if (lookups === undefined || this.#draining || client.transport === 'tcp')
      return this.#drop('unknown_flow');
    const { address, family, port } = client;
    const held = lookups.hold(key, address, family, port, socketIndex, packet, now, via);
    if (held === 'held') return 'held';
    if (held !== 'start') return this.#drop(held);
    return new LookupRequest(key, address, port, rtpSsrc(packet));
  }

  /**
   * The flow cache answered the lookup `key` (LookupRequest): where its held packets go, if anywhere
   * (drops and lookup results counted). A record of the address restores its flow; a record of the
   * SSRC only makes the address a candidate path of that session (its transceiver verifies it).
   */
  settleLookup(
    key: string,
    answer: LookupAnswer,
    now: number,
  ): { target: ForwardTarget; packets: Buffer[] } | undefined {
    const lookups = this.#lookups;
    if (lookups === undefined) return undefined;
    const outcome = answer === 'error' ? 'error' : answer === null ? 'miss' : 'found';
    const waiting = lookups.settle(key, outcome, now);
    if (waiting === undefined) return undefined;
    if (answer === 'error' || answer === null) {
      this.counters[answer === null ? SLOT.redisLookupMiss : SLOT.redisLookupError]!++;
      for (const _ of waiting.packets) this.#drop(answer === null ? 'redis_miss' : 'redis_error');
      return undefined;
    }
    this.counters[SLOT.redisLookupHit]!++;
    const client = { family: waiting.family, address: waiting.address, port: waiting.port };
    if (answer.by === 'ssrc') {
      const candidate = this.candidateFromCache(client, waiting.socketIndex, answer.ufrag, now, waiting.via);
      if (typeof candidate === 'string') {
        for (const _ of waiting.packets.slice(1)) this.#drop(candidate);
        return undefined;
      }
      const admitted = waiting.packets.filter((packet) => this.admitCandidatePacket(candidate, packet));
      return { target: candidate, packets: admitted };
    }
    const flow = this.recoverFlow(
      waiting.address,
      waiting.family,
      waiting.port,
      waiting.socketIndex,
      answer.ufrag,
      now,
      waiting.via,
    );
    if (typeof flow === 'string') {
      for (const _ of waiting.packets.slice(1)) this.#drop(flow);
      return undefined;
    }
    for (const packet of waiting.packets) this.#countForwarded(flow, packet);
    return { target: flow, packets: waiting.packets };
  }

  /** Keeps the flow's SSRC index up to date (one read and compare per RTP packet). */
  #noteSsrc(flow: Flow, packet: Buffer): void {
    const ssrc = rtpSsrc(packet);
    if (ssrc === undefined || ssrc === flow.ssrc) return;
    this.flows.indexSsrc(flow, ssrc);
    // A restarted relay or another replica finds the session by this SSRC in the flow cache.
    if (this.#lookups !== undefined && flow.client.transport === undefined) this.#unrecorded.add(flow);
  }

  /**
   * A packet from an address with no flow: a candidate new path when it is RTP whose SSRC a flow's
   * client sent last (or the address already is a candidate), forwarded to that flow's transceiver.
   * Undefined when it is neither; a drop (counted) when it is but may not be forwarded.
   */
  #candidatePath(
    packet: Buffer,
    key: string,
    client: PathCandidate['client'],
    socketIndex: number,
    via: EdgeHop | undefined,
    now: number,
  ): PathCandidate | DropReason | undefined {
    let candidate = this.candidates.get(key, now);
    if (candidate === undefined) {
      const ssrc = rtpSsrc(packet);
      const owner = ssrc === undefined ? undefined : this.flows.bySsrc(ssrc);
      // A TCP connection does not rebind: its client opens another and checks again.
      if (owner === undefined || owner.client.transport === 'tcp') return undefined;
      const made = this.#addCandidate(key, client, owner.ufrag, owner.route, socketIndex, via, now);
      if (typeof made === 'string') return made;
      candidate = made;
    }
    if (!this.candidates.admit(candidate)) return this.#drop('candidate_overflow');
    this.counters[SLOT.candidatePackets]!++;
    this.counters[candidate.route.packetsSlot]!++;
    this.counters[candidate.route.bytesSlot]! += packet.length;
    return candidate;
  }

  #addCandidate(
    key: string,
    client: PathCandidate['client'],
    ufrag: string,
    route: Route,
    socketIndex: number,
    via: EdgeHop | undefined,
    now: number,
  ): PathCandidate | DropReason {
    if (this.#draining) return this.#drop('relay_draining');
    if (!this.#newFlowLimiter.allow(client.address, now)) return this.#drop('rate_limited');
    if (!this.candidates.hasRoom()) return this.#drop('candidate_table_full');
    this.counters[SLOT.candidatesCreated]!++;
    return this.candidates.add(
      { key, client, header: encodeTunnelHeader(client), ufrag, route, socketIndex, via },
      now,
    );
  }

  /**
   * The flow cache knows the SSRC of a packet from an unknown address (another replica, or this relay
   * before a restart, saw the session's client send it): the address becomes a candidate path of that
   * session, re-verified as a recovered flow is. The held packets go to the candidate's transceiver.
   */
  candidateFromCache(
    client: PathCandidate['client'],
    socketIndex: number,
    ufrag: string,
    now: number,
    via?: EdgeHop,
  ): PathCandidate | DropReason {
    const key = clientKey(client);
    const existing = this.candidates.get(key, now);
    if (existing !== undefined) return existing;
    const route = this.#routeOfRecord(ufrag, key, via);
    if (typeof route === 'string') return route;
    return this.#addCandidate(key, client, ufrag, route, socketIndex, via, now);
  }

  /** Counts a held packet forwarded to a candidate path; false (counted) past its share. */
  admitCandidatePacket(candidate: PathCandidate, packet: Buffer): boolean {
    if (!this.candidates.admit(candidate)) {
      this.#drop('candidate_overflow');
      return false;
    }
    this.counters[SLOT.candidatePackets]!++;
    this.counters[candidate.route.packetsSlot]!++;
    this.counters[candidate.route.bytesSlot]! += packet.length;
    return true;
  }

  /**
   * A packet (one RFC 4571 frame) on a TCP connection from `address`:`port`. `flow` is the connection's
   * flow, undefined until its first packet made one: that packet must be a STUN Binding request that
   * passes every check a UDP flow's does, else the worker closes the connection. A flow that left the
   * table (idle, its transceiver removed) is `tcp_flow_gone`: the worker closes that connection too.
   */
  onTcpPacket(
    flow: Flow | undefined,
    packet: Buffer,
    address: string,
    family: AddressFamily,
    port: number,
    now: number,
  ): Flow | DropReason {
    if (flow === undefined) {
      if (classifyPacket(packet) !== 'stun') return this.#drop('tcp_not_stun');
      const key = tcpAddressKey(address, port);
      return this.#newFlowFromStun(packet, key, address, family, port, -1, undefined, now, 'tcp');
    }
    if (this.flows.get(flow.key) !== flow) return this.#drop('tcp_flow_gone');
    if (classifyPacket(packet) === 'stun') {
      if (!takeStunToken(flow, now)) return this.#drop('flow_stun_rate_limited');
      // One connection, one session: a check for another session opens a connection of its own.
      if (this.#namesOtherUfrag(packet, flow)) return this.#drop('tcp_other_ufrag');
    }
    flow.lastSeen = now;
    this.counters[flow.route.packetsSlot]!++;
    this.counters[flow.route.bytesSlot]! += packet.length;
    return flow;
  }

  /** The flow's TCP connection closed: the flow ends with it. */
  endTcpFlow(flow: Flow): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    this.counters[SLOT.flows] = this.flows.size;
  }

  /**
   * A tunnel datagram on the public port: an edge relay forwarding a client's packet. Accepted only
   * from a known edge relay; then handled like a packet from the client the header names (same
   * checks for new flows), and the flow remembers the edge so that replies go back through it. The
   * worker forwards the client's packet, `datagram.subarray(target.header.length)` (the same client, so
   * the same header length).
   */
  onEdgeDatagram(
    datagram: Buffer,
    fromAddress: string,
    fromPort: number,
    socketIndex: number,
    now: number,
  ): ClientDecision {
    if (!this.#routes.edgeSources.contains(fromAddress)) return this.#drop('edge_unknown_source');
    const decoded = decodeTunnelPacket(datagram);
    if (!decoded.ok) return this.#drop('edge_malformed');
    const { client, payload } = decoded.packet;
    const key = clientKey(client);
    const flow = this.flows.get(key);
    const kind = classifyPacket(payload);
    const isStun = kind === 'stun';
    // A known flow, unless a STUN request names another session (a new call from the same address).
    if (flow !== undefined && !(isStun && this.#namesOtherUfrag(payload, flow))) {
      this.#noteEdge(flow, fromAddress, fromPort, socketIndex);
      this.#noteSsrc(flow, payload);
      flow.lastSeen = now;
      this.counters[flow.route.packetsSlot]!++;
      this.counters[flow.route.bytesSlot]! += payload.length;
      return flow;
    }
    if (isStun) {
      const hop = { address: fromAddress, port: fromPort };
      return this.#newFlowFromStun(
        payload,
        key,
        client.address,
        client.family,
        client.port,
        socketIndex,
        hop,
        now,
        client.transport,
      );
    }
    if (kind !== 'dtls' && kind !== 'rtp') return this.#drop('unclassified');
    const hop = { address: fromAddress, port: fromPort };
    if (client.transport !== 'tcp') {
      const candidate = this.#candidatePath(payload, key, client, socketIndex, hop, now);
      if (candidate !== undefined) return candidate;
    }
    return this.#lookupOrDrop(payload, key, client, socketIndex, hop, now);
  }

  /** The flow's latest packet came through this edge relay (a restarted edge has a new port). */
  #noteEdge(flow: Flow, address: string, port: number, socketIndex: number): void {
    const via = flow.via;
    if (via === undefined || via.port !== port || via.address !== address) flow.via = { address, port };
    flow.socketIndex = socketIndex;
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
    via: EdgeHop | undefined,
    now: number,
    transport?: 'tcp',
  ): Flow | DropReason {
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
    let route: Route | undefined;
    if (fields.clusterId === this.clusterId) {
      route = this.#routes.byId(fields.transceiverId);
      if (route === undefined) return this.#drop('unknown_transceiver');
      // A draining transceiver keeps its sessions (they may still move to new addresses) but gets no new ones:
      // the ufrag's issue time tells which is which, on any relay, with no shared state.
      if (
        route.drainingSince !== undefined &&
        fields.issuedAt > route.drainingSince + DRAIN_CLOCK_TOLERANCE_S
      ) {
        return this.#drop('transceiver_draining');
      }
    } else {
      // Another cluster's session goes to that cluster's relays, if it is a peer. Never twice: what
      // an edge relay forwarded is for this cluster or nothing (no relay chains, no loops).
      if (via !== undefined || !this.#routes.hasPeer(fields.clusterId)) return this.#drop('wrong_cluster');
      route = this.#routes.peerFor(fields.clusterId, key);
      if (route === undefined) return this.#drop('no_peer_relay');
    }
    const password = deriveIcePassword(ufrag, this.#keyring.get(fields.keyId)!);
    if (!verifyMessageIntegrity(parsed.message, password)) return this.#drop('bad_integrity');
    if (!this.#newFlowLimiter.allow(address, now)) return this.#drop('rate_limited');
    if (!this.flows.hasRoomFor(key)) return this.#drop('flow_table_full');
    const flow = this.#createFlow(key, address, family, port, socketIndex, ufrag, route, via, now, transport);
    if (this.#lookups !== undefined && transport === undefined) this.#unrecorded.add(flow);
    this.counters[SLOT.flowsCreatedStun]!++;
    this.counters[route.packetsSlot]!++;
    this.counters[route.bytesSlot]! += packet.length;
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
    via: EdgeHop | undefined,
    now: number,
    transport?: 'tcp',
  ): Flow {
    const client = transport === undefined ? { family, address, port } : { family, address, port, transport };
    const flow: Flow = {
      key,
      client,
      socketIndex,
      via,
      ufrag,
      route,
      header: encodeTunnelHeader(client),
      lastSeen: now,
      recordedAt: 0,
      stunTokens: FLOW_STUN_BURST,
      stunRefilledAt: now,
      ssrc: undefined,
    };
    this.flows.set(flow);
    this.counters[SLOT.flows] = this.flows.size;
    return flow;
  }

  /**
   * The cache said `ufrag` owns this address. The record is re-verified (a tag check costs one HMAC)
   * so a stale or tampered record cannot route anywhere a ufrag could not. `via`: the edge relay the
   * held packets came through, if they did.
   */
  recoverFlow(
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    ufrag: string,
    now: number,
    via?: EdgeHop,
  ): Flow | DropReason {
    const key = addressKey(address, port);
    const existing = this.flows.get(key);
    if (existing !== undefined) return existing;
    // A lookup started before startDraining() may answer after it: no new flows while draining.
    if (this.#draining) return this.#drop('relay_draining');
    const route = this.#routeOfRecord(ufrag, key, via);
    if (typeof route === 'string') return route;
    if (!this.flows.hasRoomFor(key)) return this.#drop('flow_table_full');
    const flow = this.#createFlow(key, address, family, port, socketIndex, ufrag, route, via, now);
    flow.recordedAt = now;
    this.counters[SLOT.flowsCreatedRedis]!++;
    return flow;
  }

  /** Where a flow cache record's ufrag routes, verified as a new flow's would be (drop counted). */
  #routeOfRecord(ufrag: string, key: string, via: EdgeHop | undefined): Route | DropReason {
    const decoded = decodeUfrag(ufrag, this.#keyring);
    if (!decoded.ok) return this.#drop('redis_miss');
    if (decoded.fields.clusterId === this.clusterId) {
      return this.#routes.byId(decoded.fields.transceiverId) ?? this.#drop('unknown_transceiver');
    }
    if (via !== undefined || !this.#routes.hasPeer(decoded.fields.clusterId)) return this.#drop('redis_miss');
    return this.#routes.peerFor(decoded.fields.clusterId, key) ?? this.#drop('no_peer_relay');
  }

  /** Counts a held packet forwarded after recovery. */
  #countForwarded(flow: Flow, packet: Buffer): void {
    this.counters[flow.route.packetsSlot]!++;
    this.counters[flow.route.bytesSlot]! += packet.length;
  }

  onTunnelPacket(datagram: Buffer, fromAddress: string, fromPort: number, now: number): TunnelDecision {
    const route = this.#routes.byTunnel(fromAddress, fromPort);
    if (route === undefined) return this.#drop('tunnel_unknown_source');
    const decoded = decodeTunnelPacket(datagram);
    if (!decoded.ok) return this.#drop('tunnel_malformed');
    const { client } = decoded.packet;
    const key = clientKey(client);
    const flow = this.flows.get(key) ?? this.#flowFromCandidate(key, route, now);
    if (flow === undefined || flow.route.owner !== route.owner) return this.#drop('tunnel_no_flow');
    if (flow.via === undefined) {
      this.counters[SLOT.packetsToClient]!++;
      this.counters[SLOT.bytesToClient]! += decoded.packet.payload.length;
    } else {
      this.counters[SLOT.packetsToEdge]!++;
      this.counters[SLOT.bytesToEdge]! += decoded.packet.payload.length;
    }
    return flow;
  }

  /**
   * The transceiver sends to a candidate path of one of its sessions: it verified the client's SRTP
   * from there, so the address gets its flow (and a flow cache record) now.
   */
  #flowFromCandidate(key: string, route: Route, now: number): Flow | undefined {
    const candidate = this.candidates.get(key, now);
    if (candidate === undefined || candidate.route.owner !== route.owner) return undefined;
    this.candidates.delete(key);
    if (this.#draining || !this.flows.hasRoomFor(key)) return undefined;
    const { client } = candidate;
    const flow = this.#createFlow(
      key,
      client.address,
      client.family,
      client.port,
      candidate.socketIndex,
      candidate.ufrag,
      candidate.route,
      candidate.via,
      now,
    );
    if (this.#lookups !== undefined) this.#unrecorded.add(flow);
    this.counters[SLOT.flowsCreatedSsrc]!++;
    return flow;
  }

  /** Counts a drop decided at the sockets (the TCP front's connection limits). */
  countDrop(reason: DropReason): void {
    this.#drop(reason);
  }

  /** Counts a failed send as a drop. */
  countSendError(): void {
    this.#drop('send_error');
  }

  setRoutes(routes: Routes): void {
    this.#routes = routes;
    for (const flow of this.flows.values()) {
      const route = routes.remap(flow.route, flow.key);
      if (route === undefined) {
        this.flows.delete(flow.key);
        this.counters[SLOT.flowsRemoved]!++;
      } else {
        flow.route = route;
      }
    }
    this.candidates.retain((candidate) => {
      const route = routes.remap(candidate.route, candidate.key);
      if (route !== undefined) candidate.route = route;
      return route !== undefined;
    });
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
    this.candidates.expire(now);
    const expired = this.flows.expire(now);
    this.counters[SLOT.flowsExpired]! += expired;
    this.counters[SLOT.flows] = this.flows.size;
    this.#newFlowLimiter.sweep(now);
    this.#lookups?.sweep(now);
  }

  /**
   * Flows whose record is older than their latest packet, for the cache writer's refresh pass. TCP
   * flows never: a connection cannot be recovered, and a record would hand its address to UDP.
   */
  staleRecords(): Flow[] {
    const stale: Flow[] = [];
    for (const flow of this.flows.values())
      if (flow.client.transport !== 'tcp' && flow.lastSeen > flow.recordedAt) stale.push(flow);
    return stale;
  }

  /** Flows created or given an SSRC since the last call, for the cache writer; each is handed out once. */
  takeUnrecorded(): Flow[] {
    const taken = [...this.#unrecorded].filter((flow) => this.flows.get(flow.key) === flow);
    this.#unrecorded.clear();
    return taken;
  }
}

/** One token of the flow's STUN bucket, if it has one (refilled at FLOW_STUN_PER_SECOND). */
function takeStunToken(flow: Flow, now: number): boolean {
  const elapsed = now - flow.stunRefilledAt;
  if (elapsed > 0) {
    flow.stunTokens = Math.min(FLOW_STUN_BURST, flow.stunTokens + (elapsed * FLOW_STUN_PER_SECOND) / 1000);
    flow.stunRefilledAt = now;
  }
  if (flow.stunTokens < 1) return false;
  flow.stunTokens -= 1;
  return true;
}
