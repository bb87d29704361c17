// A transparent UDP proxy between a test's WebRTC client and the relay, on loopback: it stands for the
// network path a caller's packets take (where an attacker on the path could capture them). Each client
// address gets its own upstream socket, so the relay sees one stable address per client, and the
// proxy records what passes: the client's STUN Binding requests (to replay them) and the sequence
// numbers of the RTP the client receives (to count loss). It can also lose a share of the datagrams
// each way, from a seeded sequence, as a lossy network path does. And it can rebind a client, as a NAT
// whose mapping changed: the client's packets leave from a new socket, and replies to the old one are
// lost.
import { createSocket, type Socket } from 'node:dgram';

export interface ProxiedClient {
  /** The upstream socket's address: what the relay sees as the client's address. */
  relaySide: { address: string; port: number };
  upstream: Socket;
  /** Binding requests the client sent (raw bytes), oldest first. */
  readonly checks: Buffer[];
  /** RTP sequence numbers of the packets (not RTCP) the client received, with arrival time. */
  readonly received: { seq: number; at: number }[];
  /** Set to cut the path: nothing more passes either way (the client went silent, or its NAT died). */
  cut: boolean;
}

export interface UdpProxyOptions {
  /** Share of the datagrams dropped, each way independently (0–1); default 0. */
  readonly loss?: number;
  /** Seed of the drop sequence (a run repeats exactly with the same seed and traffic); default 1. */
  readonly seed?: number;
}

export class UdpProxy {
  readonly #downstream: Socket;
  /** Where client packets go (settable: a test may start the proxy before the relay it fronts). */
  target: { address: string; port: number };
  readonly #loss: number;
  #random: number;
  readonly clients = new Map<string, ProxiedClient>();
  /** Datagrams the path lost (with `loss`). */
  dropped = 0;

  private constructor(
    downstream: Socket,
    target: { address: string; port: number },
    options: UdpProxyOptions,
  ) {
    this.#downstream = downstream;
    this.target = target;
    this.#loss = options.loss ?? 0;
    this.#random = options.seed ?? 1;
    downstream.on('message', (data, from) => void this.#fromClient(data, from));
    downstream.on('error', () => {});
  }

  /** Listens on 127.0.0.1 and forwards to `target` (the relay's public address). */
  static async start(
    target: { address: string; port: number },
    options: UdpProxyOptions = {},
  ): Promise<UdpProxy> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpProxy(socket, target, options);
  }

  /** True for a datagram the path loses (mulberry32 over the seed). */
  #lost(): boolean {
    if (this.#loss === 0) return false;
    this.#random = (this.#random + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#random ^ (this.#random >>> 15), 1 | this.#random);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const lost = ((t ^ (t >>> 14)) >>> 0) / 4294967296 < this.#loss;
    if (lost) this.dropped++;
    return lost;
  }

  get port(): number {
    return this.#downstream.address().port;
  }

  async #fromClient(data: Buffer, from: { address: string; port: number }): Promise<void> {
    const key = `${from.address}:${from.port}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const upstream = await this.#upstreamSocket();
      client = { relaySide: upstream.address(), upstream, checks: [], received: [], cut: false };
      this.#listen(client, upstream, from);
      this.clients.set(key, client);
    }
    if (client.cut || this.#lost()) return;
    if (data[0] === 0 && data[1] === 1) client.checks.push(Buffer.from(data));
    client.upstream.send(data, this.target.port, this.target.address);
  }

  async #upstreamSocket(): Promise<Socket> {
    const upstream = createSocket('udp4');
    upstream.on('error', () => {});
    await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
    return upstream;
  }

  #listen(client: ProxiedClient, upstream: Socket, from: { address: string; port: number }): void {
    upstream.on('message', (reply) => {
      if (client.cut || client.upstream !== upstream || this.#lost()) return;
      const first = reply[0]!;
      // RTP, not RTCP: RTCP's packet types 200–204 read as payload types 72–76 (RFC 5761 §4).
      const payloadType = reply[1]! & 0x7f;
      if (first >= 128 && first <= 191 && (payloadType < 64 || payloadType > 95))
        client.received.push({ seq: reply.readUInt16BE(2), at: Date.now() });
      this.#downstream.send(reply, from.port, from.address);
    });
  }

  /**
   * The client's NAT mapping changes: from now on its packets leave from a new address (port), and
   * whatever is sent to the old one is lost. Returns the new relay-side address.
   */
  async rebind(client: ProxiedClient): Promise<{ address: string; port: number }> {
    const from = [...this.clients.entries()].find(([, entry]) => entry === client)?.[0];
    if (from === undefined) throw new Error('not a client of this proxy');
    const [address, port] = from.split(':');
    const previous = client.upstream;
    const upstream = await this.#upstreamSocket();
    client.upstream = upstream;
    client.relaySide = upstream.address();
    this.#listen(client, upstream, { address: address!, port: Number(port) });
    previous.close();
    return client.relaySide;
  }

  close(): void {
    for (const client of this.clients.values()) client.upstream.close();
    this.#downstream.close();
  }
}

/** Lost packets among the audio a client received between `from` and `to` (ms), from sequence gaps. */
export function lossBetween(
  client: ProxiedClient,
  from: number,
  to: number,
): { expected: number; lost: number } {
  const window = client.received.filter((item) => item.at >= from && item.at < to);
  if (window.length === 0) return { expected: 0, lost: 0 };
  // Sequence numbers unwrapped relative to the first (16-bit differences, so reordering and wrap work).
  const unwrapped = new Set<number>();
  let previousSeq = window[0]!.seq;
  let previous = 0;
  for (const item of window) {
    previous += ((item.seq - previousSeq + 0x8000) & 0xffff) - 0x8000;
    previousSeq = item.seq;
    unwrapped.add(previous);
  }
  const expected = Math.max(...unwrapped) - Math.min(...unwrapped) + 1;
  return { expected, lost: expected - unwrapped.size };
}
