// Loopback sockets for tests: free ports, a UDP endpoint with an awaitable inbox.
import { createSocket, type Socket } from 'node:dgram';
import { createServer } from 'node:net';

export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Datagram {
  readonly data: Buffer;
  readonly address: string;
  readonly port: number;
}

/** A UDP socket whose received datagrams queue up until a test takes them. */
export class UdpEndpoint {
  readonly socket: Socket;
  readonly #inbox: Datagram[] = [];
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (data, remote) => {
      this.#inbox.push({ data, address: remote.address, port: remote.port });
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    });
    socket.on('error', () => {});
    // A test that fails half-way must not hang the runner on a socket it never closed.
    socket.unref();
  }

  static async open(host = '127.0.0.1', port = 0): Promise<UdpEndpoint> {
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpEndpoint(socket);
  }

  get address(): { address: string; port: number } {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  send(data: Buffer, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(data, port, address, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** The next datagram (matching `filter`, others stay queued), or an error after timeoutMs. */
  async next(timeoutMs = 2_000, filter: (d: Datagram) => boolean = () => true): Promise<Datagram> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#inbox.findIndex(filter);
      if (index !== -1) return this.#inbox.splice(index, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves true if nothing (matching) arrives within `ms`. */
  async silentFor(ms: number, filter: (d: Datagram) => boolean = () => true): Promise<boolean> {
    try {
      await this.next(ms, filter);
      return false;
    } catch {
      return true;
    }
  }

  /** Everything received so far (and clears it). */
  drain(): Datagram[] {
    return this.#inbox.splice(0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
