// One tunnel socket serves every session of a transceiver (DESIGN §6). The router decides which
// session a datagram belongs to, with no I/O of its own: the caller hands it datagrams and a sink
// to send with.
//
// - A STUN Binding request is routed by the server ufrag in its USERNAME, and only after its
//   MESSAGE-INTEGRITY (with that ufrag's password) and FINGERPRINT verify: werift checks neither,
//   so a forged check must never reach it. A verified request binds the client address to the
//   session (first contact, a second candidate, NAT rebinding).
// - Anything else is routed by client address, and only for addresses a verified request bound.
// - Replies go to the relay that delivered the client's latest packet (any relay can carry any
//   flow: restarts, rescaling, a second relay tier).
import { addressKey, type TransportAddress } from '../protocol/address.ts';
import {
  parseStun,
  readReceiverUfrag,
  StunType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from '../protocol/stun.ts';
import { decodeTunnelPacket, encodeTunnelHeader } from '../protocol/tunnel.ts';

export type TunnelDropReason =
  | 'tunnel_malformed'
  | 'stun_malformed'
  | 'stun_not_request'
  | 'stun_unknown_ufrag'
  | 'stun_bad_integrity'
  | 'stun_bad_fingerprint'
  | 'unknown_client';

/** What a session sees of the tunnel. */
export interface TunnelSessionPort {
  /** A verified Binding request (the raw STUN bytes) from `client`. */
  onStunRequest(stun: Buffer, client: TransportAddress): void;
  /** DTLS, SRTP or SRTCP from a client address bound to this session. */
  onData(packet: Buffer, client: TransportAddress): void;
}

export interface TunnelSink {
  send(parts: readonly Buffer[], relay: { address: string; port: number }): void;
}

interface ClientBinding {
  readonly client: TransportAddress;
  readonly header: Buffer;
  readonly port: TunnelSessionPort;
  relay: { address: string; port: number };
  lastSeen: number;
}

export class TunnelRouter {
  readonly #sink: TunnelSink;
  /** ufrag → (session, password): several ufrags per session during an ICE restart. */
  readonly #ufrags = new Map<string, { port: TunnelSessionPort; password: string }>();
  readonly #clients = new Map<string, ClientBinding>();
  readonly drops = new Map<TunnelDropReason, number>();

  constructor(sink: TunnelSink) {
    this.#sink = sink;
  }

  #drop(reason: TunnelDropReason): TunnelDropReason {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    return reason;
  }

  /** Accept Binding requests naming `ufrag`, authenticated with `password`, for `port`. */
  addCredentials(ufrag: string, password: string, port: TunnelSessionPort): void {
    this.#ufrags.set(ufrag, { port, password });
  }

  removeCredentials(ufrag: string): void {
    this.#ufrags.delete(ufrag);
  }

  /** Forgets every ufrag and client address of a session (it ended). */
  removeSession(port: TunnelSessionPort): void {
    for (const [ufrag, entry] of this.#ufrags) if (entry.port === port) this.#ufrags.delete(ufrag);
    for (const [key, binding] of this.#clients) if (binding.port === port) this.#clients.delete(key);
  }

  /** Handles one datagram from a relay. Returns the drop reason, or undefined when delivered. */
  onDatagram(
    datagram: Buffer,
    relay: { address: string; port: number },
    now: number,
  ): TunnelDropReason | undefined {
    const decoded = decodeTunnelPacket(datagram);
    if (!decoded.ok) return this.#drop('tunnel_malformed');
    const { client, payload } = decoded.packet;
    const key = addressKey(client.address, client.port);
    const first = payload[0];
    if (first !== undefined && first < 4) {
      const parsed = parseStun(payload);
      if (!parsed.ok) return this.#drop('stun_malformed');
      if (parsed.message.type !== StunType.BindingRequest) return this.#drop('stun_not_request');
      const ufrag = readReceiverUfrag(parsed.message);
      const entry = ufrag === undefined ? undefined : this.#ufrags.get(ufrag);
      if (entry === undefined) return this.#drop('stun_unknown_ufrag');
      if (!verifyMessageIntegrity(parsed.message, entry.password)) return this.#drop('stun_bad_integrity');
      if (!verifyFingerprint(parsed.message)) return this.#drop('stun_bad_fingerprint');
      let binding = this.#clients.get(key);
      if (binding === undefined || binding.port !== entry.port) {
        binding = { client, header: encodeTunnelHeader(client), port: entry.port, relay, lastSeen: now };
        this.#clients.set(key, binding);
      }
      binding.relay = relay;
      binding.lastSeen = now;
      entry.port.onStunRequest(parsed.message.raw, binding.client);
      return undefined;
    }
    const binding = this.#clients.get(key);
    if (binding === undefined) return this.#drop('unknown_client');
    binding.relay = relay;
    binding.lastSeen = now;
    binding.port.onData(payload, binding.client);
    return undefined;
  }

  /** Sends `payload` to a client through the relay that last delivered one of its packets. */
  send(client: TransportAddress, payload: Buffer): boolean {
    const binding = this.#clients.get(addressKey(client.address, client.port));
    if (binding === undefined) return false;
    this.#sink.send([binding.header, payload], binding.relay);
    return true;
  }

  /** Client addresses bound to sessions (for metrics and tests). */
  get clientCount(): number {
    return this.#clients.size;
  }

  /** Forgets client addresses of any session that sent nothing for `idleMs` (old NAT mappings). */
  expireClients(now: number, idleMs: number): void {
    for (const [key, binding] of this.#clients)
      if (now - binding.lastSeen > idleMs) this.#clients.delete(key);
  }
}
