// A transparent UDP proxy between a test's WebRTC client and the relay, on loopback: it stands for the
// network path a caller's packets take (where an attacker on the path could capture them). Each client
// address gets its own upstream socket, so the relay sees one stable address per client, and the
// proxy records what passes: the client's STUN Binding requests (to replay them) and the sequence
// numbers of the RTP the client receives (to count loss).
import { createSocket, type Socket } from 'node:dgram';

export interface ProxiedClient {
  /** The upstream socket's address: what the relay sees as the client's address. */
  readonly relaySide: { address: string; port: number };
  readonly upstream: Socket;
  /** Binding requests the client sent (raw bytes), oldest first. */
  readonly checks: Buffer[];
  /** RTP sequence numbers of the packets (not RTCP) the client received, with arrival time. */
  readonly received: { seq: number; at: number }[];
  /** Set to cut the path: nothing more passes either way (the client went silent, or its NAT died). */
  cut: boolean;
}

export class UdpProxy {
  readonly #downstream: Socket;
  readonly #target: { address: string; port: number };
  readonly clients = new Map<string, ProxiedClient>();

  private constructor(downstream: Socket, target: { address: string; port: number }) {
    this.#downstream = downstream;
    this.#target = target;
    downstream.on('message', (data, from) => void this.#fromClient(data, from));
    downstream.on('error', () => {});
  }

  /** Listens on 127.0.0.1 and forwards to `target` (the relay's public address). */
  static async start(target: { address: string; port: number }): Promise<UdpProxy> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpProxy(socket, target);
  }

  get port(): number {
    return this.#downstream.address().port;
  }

  async #fromClient(data: Buffer, from: { address: string; port: number }): Promise<void> {
    const key = `${from.address}:${from.port}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const upstream = createSocket('udp4');
      upstream.on('error', () => {});
      await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
      client = { relaySide: upstream.address(), upstream, checks: [], received: [], cut: false };
      const created = client;
      upstream.on('message', (reply) => {
        if (created.cut) return;
        const first = reply[0]!;
        // RTP, not RTCP: RTCP's packet types 200–204 read as payload types 72–76 (RFC 5761 §4).
        const payloadType = reply[1]! & 0x7f;
        if (first >= 128 && first <= 191 && (payloadType < 64 || payloadType > 95))
          created.received.push({ seq: reply.readUInt16BE(2), at: Date.now() });
        this.#downstream.send(reply, from.port, from.address);
      });
      this.clients.set(key, client);
    }
    if (client.cut) return;
    if (data[0] === 0 && data[1] === 1) client.checks.push(Buffer.from(data));
    client.upstream.send(data, this.#target.port, this.#target.address);
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
