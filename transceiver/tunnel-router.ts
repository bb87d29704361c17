// One tunnel socket serves every session of a transceiver (docs/tunnel.md). The router decides which
// session a datagram belongs to and where a session's packets may go, with no I/O of its own: the
// caller hands it datagrams and a sink to send with. docs/security.md has the threat model.
//
// - Tunnel datagrams are accepted only from known relay addresses (configured, or the routing
//   table's relaySources): anyone else could name a live client and steer its call.
// - A STUN Binding request is routed by the server ufrag in its USERNAME, and only after its
//   MESSAGE-INTEGRITY (with that ufrag's password) and FINGERPRINT verify: werift checks neither,
//   so a forged check must never reach it. Its source becomes a path of the session.
// - A path receives the session's media only once validated by a challenge it answered; before
//   that, at most 3× the bytes it sent (session-paths.ts). A replayed check moves nothing.
// - Anything else is routed by client address, and only for addresses a verified request bound;
//   except SRTP from an unknown address carrying a session's SSRC (the relay forwards such packets
//   as candidate new paths: NAT rebinding). The session verifies it (authentication tag, and newer
//   than anything accepted); then the address is bound and challenged like a checked one, and the
//   media moves there when it answers, one round trip after the client's first packet from there.
// - Replies go to the relay that delivered the client's latest packet (any relay can carry any
//   flow: restarts, rescaling, a second relay tier).
// - For 30 s after a session ends, a verified check from the address its media went to is answered
//   with an integrity-protected 403: a browser fails the pair on its next check (1.6 s in Chromium)
//   instead of waiting ~30 s for ICE consent to expire (RFC 7675), so the caller learns the call is
//   over (docs/reliability.md).
import { randomBytes } from 'node:crypto';
import { clientKey, type TransportAddress } from '../protocol/address.ts';
import type { CidrSet } from '../protocol/cidr.ts';
import { classifyPacket } from '../protocol/packet-kind.ts';
import { rtpSsrc } from '../protocol/rtp-header.ts';
import {
  encodeErrorCode,
  encodeStun,
  findAttribute,
  parseStun,
  readReceiverUfrag,
  StunAttr,
  type StunMessage,
  StunType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from '../protocol/stun.ts';
import { decodeTunnelPacket, encodeTunnelHeader } from '../protocol/tunnel.ts';
import { DEFAULT_PATH_LIMITS, type Path, type PathLimits, SessionPaths } from './session-paths.ts';

export type TunnelDropReason =
  | 'tunnel_unknown_source'
  | 'tunnel_malformed'
  | 'stun_malformed'
  | 'stun_not_request'
  | 'stun_unknown_ufrag'
  | 'stun_bad_integrity'
  | 'stun_bad_fingerprint'
  | 'stun_replayed'
  | 'stun_rate_limited'
  | 'stun_too_many_paths'
  | 'stun_unexpected_response'
  | 'stun_call_ended'
  | 'unknown_client'
  | 'media_candidate_rate_limited'
  | 'media_candidate_rejected'
  | 'srtp_rejected';

/** Packets the router did not send for a session: budget of an unvalidated path, full hold queue. */
export type TunnelSendDropReason = 'amplification_limit' | 'hold_overflow' | 'no_path';

/** What a session sees of the tunnel. */
export interface TunnelSessionPort {
  /** A verified Binding request (the raw STUN bytes) from `client`. */
  onStunRequest(stun: Buffer, client: TransportAddress): void;
  /**
   * DTLS, SRTP or SRTCP from a client address bound to this session. Returns why the session
   * dropped it, if it did: SRTP of its stream that did not authenticate.
   */
  onData(packet: Buffer, client: TransportAddress): 'srtp_rejected' | undefined;
  /** A packet arrived on the session's validated path: the client is alive (media timeout). */
  onPathActivity(): void;
  /**
   * SRTP from an address the session does not know yet: 'verified' when it is the client's own
   * (authenticated with the session's key, newer than anything accepted), else why not.
   */
  verifyNewPathMedia(packet: Buffer): string;
}

export interface TunnelSink {
  send(parts: readonly Buffer[], relay: { address: string; port: number }): void;
}

/** The client's ICE credentials (from its offer): the key of the challenges sent to its paths. */
export interface RemoteIceCredentials {
  readonly ufrag: string;
  readonly password: string;
}

interface Session {
  readonly port: TunnelSessionPort;
  readonly paths: SessionPaths;
  /** The session's server ufrags, newest last (ICE restarts add one). */
  readonly ufrags: string[];
  remote: RemoteIceCredentials | undefined;
  /** The SSRC of the client's latest RTP on a bound address (indexed by the router). */
  ssrc: number | undefined;
}

interface ClientBinding {
  readonly client: TransportAddress;
  readonly header: Buffer;
  readonly session: Session;
  relay: { address: string; port: number };
  lastSeen: number;
}

export interface TunnelRouterOptions {
  readonly sink: TunnelSink;
  /** Relay addresses tunnel datagrams are accepted from. */
  readonly relays: CidrSet;
  readonly pathLimits?: PathLimits;
}

/** A fixed tie-breaker: an ICE-lite agent is always controlled, so it never wins a role conflict. */
const TIE_BREAKER = Buffer.alloc(8);

/** How long an ended session's ufrags are remembered, to refuse its client's checks (ms). */
const ENDED_SESSION_MS = 30_000;
/** Refusals per ended ufrag at most: a browser gives up the pair on the first. */
const ENDED_REFUSALS = 8;
/** Ended ufrags remembered at most; the oldest are forgotten first. */
const MAX_ENDED = 10_000;

/** What is kept of an ended session's ufrag: enough to verify its client's checks and refuse them. */
interface EndedUfrag {
  readonly password: string;
  /** The address its media went to (the only one refused: no reflection toward others). */
  readonly pathKey: string;
  readonly until: number;
  refusals: number;
}

export class TunnelRouter {
  readonly #sink: TunnelSink;
  #relays: CidrSet;
  readonly #pathLimits: PathLimits;
  /** ufrag → (session, password): several ufrags per session during an ICE restart. */
  readonly #ufrags = new Map<string, { session: Session; password: string }>();
  readonly #sessions = new Map<object, Session>();
  readonly #clients = new Map<string, ClientBinding>();
  /** SSRC → the session whose client sent it last: one entry per session at most. */
  readonly #bySsrc = new Map<number, Session>();
  /** Ended sessions' ufrags, oldest first. */
  readonly #ended = new Map<string, EndedUfrag>();
  readonly drops = new Map<TunnelDropReason, number>();
  readonly sendDrops = new Map<TunnelSendDropReason, number>();
  /** Paths validated by an answered challenge (a first path or a client's move). */
  pathsValidated = 0;
  /** Addresses bound by the client's verified SRTP (a NAT rebinding found by its media). */
  mediaPathsBound = 0;

  constructor(options: TunnelRouterOptions) {
    this.#sink = options.sink;
    this.#relays = options.relays;
    this.#pathLimits = options.pathLimits ?? DEFAULT_PATH_LIMITS;
  }

  /** Replaces the relay addresses tunnel datagrams are accepted from (the routing table changed). */
  setRelays(relays: CidrSet): void {
    this.#relays = relays;
  }

  #drop(reason: TunnelDropReason): TunnelDropReason {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    return reason;
  }

  #sendDrop(reason: TunnelSendDropReason): false {
    this.sendDrops.set(reason, (this.sendDrops.get(reason) ?? 0) + 1);
    return false;
  }

  #session(port: TunnelSessionPort): Session {
    let session = this.#sessions.get(port);
    if (session === undefined) {
      session = {
        port,
        paths: new SessionPaths(this.#pathLimits),
        ufrags: [],
        remote: undefined,
        ssrc: undefined,
      };
      this.#sessions.set(port, session);
    }
    return session;
  }

  /** Accept Binding requests naming `ufrag`, authenticated with `password`, for `port`. */
  addCredentials(ufrag: string, password: string, port: TunnelSessionPort): void {
    const session = this.#session(port);
    session.ufrags.push(ufrag);
    this.#ufrags.set(ufrag, { session, password });
  }

  /** The client's ICE credentials (its offer, or a re-offer that restarted ICE). */
  setRemoteCredentials(port: TunnelSessionPort, remote: RemoteIceCredentials): void {
    this.#session(port).remote = remote;
  }

  /**
   * Forgets every path and client address of a session (it ended at `now`). Its ufrags are kept
   * for ENDED_SESSION_MS, with the address its media went to, so that its client's checks are
   * refused rather than ignored.
   */
  removeSession(port: TunnelSessionPort, now: number): void {
    const session = this.#sessions.get(port);
    if (session === undefined) return;
    this.#sessions.delete(port);
    const pathKey = session.paths.current?.key;
    for (const ufrag of session.ufrags) {
      const entry = this.#ufrags.get(ufrag);
      this.#ufrags.delete(ufrag);
      if (entry === undefined || pathKey === undefined) continue;
      this.#ended.set(ufrag, {
        password: entry.password,
        pathKey,
        until: now + ENDED_SESSION_MS,
        refusals: 0,
      });
    }
    for (const ufrag of this.#ended.keys()) {
      if (this.#ended.size <= MAX_ENDED) break;
      this.#ended.delete(ufrag);
    }
    for (const [key, binding] of this.#clients) if (binding.session === session) this.#clients.delete(key);
    if (session.ssrc !== undefined && this.#bySsrc.get(session.ssrc) === session)
      this.#bySsrc.delete(session.ssrc);
  }

  /** Handles one datagram from a relay. Returns the drop reason, or undefined when delivered. */
  onDatagram(
    datagram: Buffer,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason | undefined {
    if (!this.#relays.contains(relay.address)) return this.#drop('tunnel_unknown_source');
    const decoded = decodeTunnelPacket(datagram);
    if (!decoded.ok) return this.#drop('tunnel_malformed');
    const { client, payload } = decoded.packet;
    const key = clientKey(client);
    if (classifyPacket(payload) === 'stun') return this.#onStun(payload, client, key, relay, now);
    const binding = this.#clients.get(key);
    if (binding === undefined) return this.#onUnknownClientMedia(payload, client, key, relay, now);
    binding.relay = relay;
    binding.lastSeen = now;
    const session = binding.session;
    const ssrc = rtpSsrc(payload);
    if (ssrc !== undefined && ssrc !== session.ssrc) this.#indexSsrc(session, ssrc);
    const path = session.paths.onData(key, payload.length, now);
    const dropped = session.port.onData(payload, binding.client);
    // A forged packet does not keep a call alive.
    if (dropped !== undefined) return this.#drop(dropped);
    if (path?.validated) session.port.onPathActivity();
    return undefined;
  }

  #indexSsrc(session: Session, ssrc: number): void {
    if (session.ssrc !== undefined && this.#bySsrc.get(session.ssrc) === session)
      this.#bySsrc.delete(session.ssrc);
    session.ssrc = ssrc;
    this.#bySsrc.set(ssrc, session);
  }

  /**
   * A packet from an address no session knows: a candidate new path if it is SRTP of a session's
   * client, verified by the session (docs/security.md: media goes there only once the address
   * answers its challenge).
   */
  #onUnknownClientMedia(
    payload: Buffer,
    client: TransportAddress,
    key: string,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason | undefined {
    const ssrc = rtpSsrc(payload);
    const session = ssrc === undefined ? undefined : this.#bySsrc.get(ssrc);
    if (session === undefined) return this.#drop('unknown_client');
    if (!session.paths.admitMediaCandidate(now)) return this.#drop('media_candidate_rate_limited');
    if (session.port.verifyNewPathMedia(payload) !== 'verified')
      return this.#drop('media_candidate_rejected');
    const verdict = session.paths.onVerifiedMedia(client, key, payload.length, now);
    if (verdict.kind !== 'deliver') return this.#drop('stun_too_many_paths');
    const binding = this.#bind(session, verdict.evicted, client, key, relay, now);
    this.mediaPathsBound++;
    session.port.onData(payload, client);
    if (verdict.challenge) this.#challenge(session, verdict.path, binding, now);
    return undefined;
  }

  #onStun(
    payload: Buffer,
    client: TransportAddress,
    key: string,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason | undefined {
    const parsed = parseStun(payload);
    if (!parsed.ok) return this.#drop('stun_malformed');
    const message = parsed.message;
    if (message.type === StunType.BindingSuccess) return this.#onResponse(message, key, relay, now);
    if (message.type !== StunType.BindingRequest) return this.#drop('stun_not_request');
    const ufrag = readReceiverUfrag(message);
    const entry = ufrag === undefined ? undefined : this.#ufrags.get(ufrag);
    if (entry === undefined) return this.#refuseIfEnded(message, ufrag, client, key, relay, now);
    const unverified = this.#verify(message, entry.password);
    if (unverified !== undefined) return unverified;
    const { session } = entry;
    const useCandidate = findAttribute(message, StunAttr.UseCandidate) !== undefined;
    const verdict = session.paths.onCheck(
      client,
      key,
      message.transactionId.toString('latin1'),
      payload.length,
      useCandidate,
      now,
    );
    if (verdict.kind === 'replayed') return this.#drop('stun_replayed');
    if (verdict.kind === 'rate-limited') return this.#drop('stun_rate_limited');
    if (verdict.kind === 'too-many-paths') return this.#drop('stun_too_many_paths');
    const binding = this.#bind(session, verdict.evicted, client, key, relay, now);
    session.port.onStunRequest(message.raw, binding.client);
    if (verdict.path.validated) session.port.onPathActivity();
    else if (verdict.challenge) this.#challenge(session, verdict.path, binding, now);
    return undefined;
  }

  /**
   * Binds `client` to the session it proved to belong to (a verified check, or verified SRTP),
   * forgetting the address the session's paths evicted to make room, if any.
   */
  #bind(
    session: Session,
    evictedKey: string | undefined,
    client: TransportAddress,
    key: string,
    relay: { address: string; port: number },
    now: number,
  ): ClientBinding {
    if (evictedKey !== undefined) {
      const evicted = this.#clients.get(evictedKey);
      if (evicted?.session === session) this.#clients.delete(evictedKey);
    }
    let binding = this.#clients.get(key);
    if (binding === undefined || binding.session !== session) {
      // The address belonged to another session (a client reused its port): it moves here.
      binding?.session.paths.forget(key);
      binding = { client, header: encodeTunnelHeader(client), session, relay, lastSeen: now };
      this.#clients.set(key, binding);
    }
    binding.relay = relay;
    binding.lastSeen = now;
    return binding;
  }

  /** A check's MESSAGE-INTEGRITY (keyed with `password`) and FINGERPRINT; the drop if either fails. */
  #verify(message: StunMessage, password: string): TunnelDropReason | undefined {
    if (!verifyMessageIntegrity(message, password)) return this.#drop('stun_bad_integrity');
    if (!verifyFingerprint(message)) return this.#drop('stun_bad_fingerprint');
    return undefined;
  }

  /**
   * A check naming no live session: if it is for a session that ended lately, verified, from the
   * address its media went to, it gets a 403 error response (integrity-protected with the session's
   * password, as the client requires of a response). libwebrtc fails the candidate pair on it, so
   * the browser's connection state leaves `connected`. A few per session at most.
   */
  #refuseIfEnded(
    message: StunMessage,
    ufrag: string | undefined,
    client: TransportAddress,
    key: string,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason {
    const ended = ufrag === undefined ? undefined : this.#ended.get(ufrag);
    if (ended === undefined || now > ended.until || ended.pathKey !== key)
      return this.#drop('stun_unknown_ufrag');
    const unverified = this.#verify(message, ended.password);
    if (unverified !== undefined) return unverified;
    if (ended.refusals < ENDED_REFUSALS) {
      ended.refusals++;
      const refusal = encodeStun({
        type: StunType.BindingError,
        transactionId: message.transactionId,
        attributes: [
          { type: StunAttr.ErrorCode, value: encodeErrorCode(403, 'Forbidden: the call has ended') },
        ],
        integrityKey: ended.password,
        fingerprint: true,
      });
      this.#sink.send([encodeTunnelHeader(client), refusal], relay);
    }
    return this.#drop('stun_call_ended');
  }

  /** A Binding request to an unvalidated path, keyed with the client's password (RFC 8445 §7.2.2). */
  #challenge(session: Session, path: Path, binding: ClientBinding, now: number): void {
    const remote = session.remote;
    const local = session.ufrags.at(-1);
    if (remote === undefined || local === undefined) return;
    const transactionId = randomBytes(12);
    const priority = Buffer.alloc(4);
    // Peer-reflexive priority of a relayed-looking candidate: the client only needs a valid value.
    priority.writeUInt32BE(0x6effffff, 0);
    const challenge = encodeStun({
      type: StunType.BindingRequest,
      transactionId,
      attributes: [
        { type: StunAttr.Username, value: Buffer.from(`${remote.ufrag}:${local}`) },
        { type: StunAttr.Priority, value: priority },
        { type: StunAttr.IceControlled, value: TIE_BREAKER },
      ],
      integrityKey: remote.password,
      fingerprint: true,
    });
    if (!session.paths.startChallenge(path, transactionId.toString('latin1'), challenge.length, now)) return;
    this.#sink.send([binding.header, challenge], binding.relay);
  }

  #onResponse(
    message: StunMessage,
    key: string,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason | undefined {
    const binding = this.#clients.get(key);
    const remote = binding?.session.remote;
    if (binding === undefined || remote === undefined) return this.#drop('stun_unexpected_response');
    if (!verifyMessageIntegrity(message, remote.password)) return this.#drop('stun_bad_integrity');
    const validated = binding.session.paths.onChallengeResponse(
      key,
      message.transactionId.toString('latin1'),
    );
    if (validated === undefined) return this.#drop('stun_unexpected_response');
    this.pathsValidated++;
    binding.relay = relay;
    binding.lastSeen = now;
    binding.session.port.onPathActivity();
    for (const packet of validated.release) this.#sink.send([binding.header, packet], binding.relay);
    return undefined;
  }

  /** A STUN reply of the session's (werift's answer to a check) to `client`, within its path's budget. */
  sendStun(port: object, client: TransportAddress, payload: Buffer): boolean {
    const key = clientKey(client);
    const binding = this.#clients.get(key);
    const session = this.#sessions.get(port);
    if (binding === undefined || session === undefined || binding.session !== session)
      return this.#sendDrop('no_path');
    if (session.paths.admitReply(key, payload.length) === undefined)
      return this.#sendDrop('amplification_limit');
    this.#sink.send([binding.header, payload], binding.relay);
    return true;
  }

  /** A packet of the session's own (DTLS, SRTP, SCTP): to its validated path, or held until there is one. */
  sendData(port: object, payload: Buffer): boolean {
    const session = this.#sessions.get(port);
    if (session === undefined) return this.#sendDrop('no_path');
    const verdict = session.paths.routeData(payload);
    if (verdict.kind === 'held') return true;
    if (verdict.kind === 'dropped') return this.#sendDrop('hold_overflow');
    const binding = this.#clients.get(verdict.path.key);
    if (binding === undefined) return this.#sendDrop('no_path');
    this.#sink.send([binding.header, payload], binding.relay);
    return true;
  }

  /** The session's paths, for logs (undefined for an unknown session). */
  describeSession(port: TunnelSessionPort): ReturnType<SessionPaths['describe']> | undefined {
    return this.#sessions.get(port)?.paths.describe();
  }

  /** Where the session's media goes now (for tests and logs). */
  currentPath(port: TunnelSessionPort): TransportAddress | undefined {
    return this.#sessions.get(port)?.paths.current?.client;
  }

  /** Client addresses bound to sessions (for metrics and tests). */
  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Forgets client addresses of any session that sent nothing for `idleMs` (old NAT mappings), and
   * ended sessions' ufrags past their time.
   */
  expireClients(now: number, idleMs: number): void {
    for (const [ufrag, ended] of this.#ended) if (now > ended.until) this.#ended.delete(ufrag);
    for (const [key, binding] of this.#clients)
      if (now - binding.lastSeen > idleMs) {
        this.#clients.delete(key);
        binding.session.paths.forget(key);
      }
  }
}
