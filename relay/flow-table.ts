// The relay's only per-session state: client transport address → the transceiver that owns it.
// Sans-I/O: times are passed in, nothing here touches a socket or a clock.
import type { TransportAddress } from '../protocol/address.ts';
import type { Route } from './routes.ts';

/** An edge relay's tunnel socket, as this relay's public socket saw it. */
export interface EdgeHop {
  readonly address: string;
  readonly port: number;
}

export interface Flow {
  /** addressKey(client.address, client.port): the Map key. */
  readonly key: string;
  readonly client: TransportAddress;
  /** Index of the public socket the flow's latest packet arrived on; replies leave from it. */
  socketIndex: number;
  /**
   * The edge relay the flow's latest packet came through (global relay tier), or undefined when the
   * client sends to this relay directly. Replies retrace the path: through the edge, tunnel header
   * and all, so the client hears from the edge relay it sent to.
   */
  via: EdgeHop | undefined;
  /** The server ufrag that authorised this flow. */
  readonly ufrag: string;
  route: Route;
  /** Tunnel header for this client, built once so forwarding is a two-buffer send. */
  readonly header: Buffer;
  /** Last packet from the client (ms). Return traffic does not keep a flow alive. */
  lastSeen: number;
  /** Last time the flow was written to Redis (ms); 0 = never. */
  recordedAt: number;
  /** STUN packets the flow may still forward now (a token bucket refilled with time). */
  stunTokens: number;
  /** When stunTokens was last refilled (ms). */
  stunRefilledAt: number;
  /**
   * The SSRC of the client's latest RTP packet (clear in the SRTP header), indexed by the table: a
   * packet from an unknown address carrying it is a candidate new path of this flow's session.
   */
  ssrc: number | undefined;
}

export class FlowTable {
  readonly #flows = new Map<string, Flow>();
  /** SSRC → the flow whose client sent it last: at most one entry per flow. */
  readonly #bySsrc = new Map<number, Flow>();
  readonly maxFlows: number;
  readonly idleTimeoutMs: number;

  constructor(options: { maxFlows: number; idleTimeoutMs: number }) {
    this.maxFlows = options.maxFlows;
    this.idleTimeoutMs = options.idleTimeoutMs;
  }

  get size(): number {
    return this.#flows.size;
  }

  get(key: string): Flow | undefined {
    return this.#flows.get(key);
  }

  /** Room for a flow at `key` (replacing the flow already there always fits). */
  hasRoomFor(key: string): boolean {
    return this.#flows.size < this.maxFlows || this.#flows.has(key);
  }

  /** Inserts or replaces the flow at flow.key. The caller checks hasRoomFor first. */
  set(flow: Flow): void {
    const replaced = this.#flows.get(flow.key);
    if (replaced !== undefined && replaced !== flow) this.#unindex(replaced);
    this.#flows.set(flow.key, flow);
  }

  delete(key: string): Flow | undefined {
    const flow = this.#flows.get(key);
    if (flow === undefined) return undefined;
    this.#flows.delete(key);
    this.#unindex(flow);
    return flow;
  }

  /**
   * The flow's client now sends RTP with `ssrc` (a new call, or the client changed it). The latest
   * flow to send an SSRC owns it: after a NAT rebinding that is the flow of the new address.
   */
  indexSsrc(flow: Flow, ssrc: number): void {
    this.#unindex(flow);
    flow.ssrc = ssrc;
    this.#bySsrc.set(ssrc, flow);
  }

  /** The flow whose client sent RTP with this SSRC last, if it is still in the table. */
  bySsrc(ssrc: number): Flow | undefined {
    return this.#bySsrc.get(ssrc);
  }

  /** SSRCs indexed (for tests: never more than the flows). */
  get ssrcCount(): number {
    return this.#bySsrc.size;
  }

  #unindex(flow: Flow): void {
    if (flow.ssrc !== undefined && this.#bySsrc.get(flow.ssrc) === flow) this.#bySsrc.delete(flow.ssrc);
  }

  /** Removes flows idle for longer than the timeout; returns how many. */
  expire(now: number): number {
    const cutoff = now - this.idleTimeoutMs;
    let expired = 0;
    for (const flow of this.#flows.values()) {
      if (flow.lastSeen < cutoff) {
        this.delete(flow.key);
        expired++;
      }
    }
    return expired;
  }

  values(): IterableIterator<Flow> {
    return this.#flows.values();
  }
}
