// The relay's ICE-TCP port (RFC 6544 passive candidates, RFC 4571 framing; docs/reaching-the-edge.md).
// The socket shell only: every packet decision is RelayCore's (onTcpPacket), as on UDP. Every worker
// listens (SO_REUSEPORT); one TCP connection is one flow of the worker that accepted it, and the
// tunnel names it with its remote address and the TCP type, so the transceiver's replies come back to
// that worker's tunnel socket, which writes them into the same connection.
//
// What a connection may cost before it proves anything: one timer, one partial packet of at most
// maxPacketBytes, and a slot in the global and per-source caps. Its first packet must be a STUN
// Binding request that passes the same checks as a UDP flow's, else it is closed; so is one that sends
// nothing valid within firstPacketTimeoutMs (slowloris), one whose flow expires (half-open or silent)
// and one that announces a longer packet than any ICE agent sends.
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AddressFamily } from '../protocol/address.ts';
import { FrameReader, frameHeader } from '../protocol/rfc4571.ts';
import type { RelayConfig } from './config.ts';
import { SLOT } from './counters.ts';
import type { Flow } from './flow-table.ts';
import type { RelayCore } from './relay-core.ts';

/** Probes for a peer that vanished without a FIN; its flow's idle timeout then ends the connection. */
const KEEPALIVE_MS = 10_000;

export interface TcpFrontOptions {
  readonly config: RelayConfig['tcp'];
  readonly core: RelayCore;
  readonly counters: Float64Array;
  readonly logger: Logger;
  /** Sends a client's packet on its flow: to the owning transceiver, or a peer cluster's relay. */
  readonly forward: (flow: Flow, packet: Buffer) => void;
}

interface Connection {
  readonly socket: Socket;
  readonly reader: FrameReader;
  readonly address: string;
  readonly family: AddressFamily;
  readonly port: number;
  flow: Flow | undefined;
  firstPacketTimer: NodeJS.Timeout | undefined;
}

export class TcpFront {
  readonly #options: TcpFrontOptions;
  readonly #servers: Server[] = [];
  readonly #connections = new Set<Connection>();
  readonly #byFlowKey = new Map<string, Connection>();
  readonly #perSource = new Map<string, number>();

  constructor(options: TcpFrontOptions) {
    this.#options = options;
  }

  /** Listens on every configured TCP address; rejects (closing what it opened) if one fails. */
  async listen(): Promise<void> {
    try {
      for (const listen of this.#options.config.listen) {
        const server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
        server.on('error', (error) => this.#options.logger.warn({ err: error.message }, 'tcp server error'));
        this.#servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          // SO_REUSEPORT: every worker listens on the same address, the kernel spreads the connections.
          const options = {
            host: listen.address,
            port: listen.port,
            ipv6Only: listen.family === 6,
            reusePort: true,
          };
          server.listen(options, () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
    } catch (error) {
      this.stop();
      throw error;
    }
  }

  /** Open connections (for tests). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  #accept(socket: Socket): void {
    const { config, core } = this.#options;
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    if (address === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    if (this.#connections.size >= config.maxConnections) {
      core.countDrop('tcp_connection_limit');
      socket.destroy();
      return;
    }
    const fromSource = this.#perSource.get(address) ?? 0;
    if (fromSource >= config.maxConnectionsPerSource) {
      core.countDrop('tcp_source_limit');
      socket.destroy();
      return;
    }
    this.#perSource.set(address, fromSource + 1);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    const connection: Connection = {
      socket,
      reader: new FrameReader(config.maxPacketBytes),
      address,
      family: socket.remoteFamily === 'IPv6' ? 6 : 4,
      port,
      flow: undefined,
      firstPacketTimer: setTimeout(() => {
        core.countDrop('tcp_handshake_timeout');
        socket.destroy();
      }, config.firstPacketTimeoutMs),
    };
    this.#connections.add(connection);
    this.#options.counters[SLOT.tcpConnectionsAccepted]!++;
    this.#options.counters[SLOT.tcpConnections] = this.#connections.size;
    socket.on('data', (chunk: Buffer) => this.#onData(connection, chunk));
    // ECONNRESET and the like: 'close' follows and cleans up.
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose(connection));
  }

  #onData(connection: Connection, chunk: Buffer): void {
    const { core, counters } = this.#options;
    const packets = connection.reader.push(chunk);
    for (const packet of packets) {
      const decision = core.onTcpPacket(
        connection.flow,
        packet,
        connection.address,
        connection.family,
        connection.port,
        Date.now(),
      );
      if (typeof decision === 'object') {
        if (connection.flow === undefined) {
          connection.flow = decision;
          clearTimeout(connection.firstPacketTimer);
          connection.firstPacketTimer = undefined;
          this.#byFlowKey.set(decision.key, connection);
        }
        counters[SLOT.tcpPacketsFromClients]!++;
        this.#options.forward(decision, packet);
      } else if (connection.flow === undefined || decision === 'tcp_flow_gone') {
        // Counted by the core. A connection that has not proved itself, or whose flow is over, ends.
        connection.socket.destroy();
        return;
      }
    }
    if (connection.reader.tooLarge) {
      core.countDrop('tcp_frame_too_large');
      connection.socket.destroy();
    }
  }

  /** A transceiver's packet for `flow`'s client: framed into its connection, unless it lags behind. */
  deliver(flow: Flow, packet: Buffer): void {
    const { core, config, counters } = this.#options;
    const connection = this.#byFlowKey.get(flow.key);
    if (connection === undefined || connection.flow !== flow) {
      core.countDrop('tcp_flow_gone');
      return;
    }
    const socket = connection.socket;
    // Real-time media: a packet that would wait behind this much is better dropped than late.
    if (socket.writableLength + packet.length + 2 > config.sendBufferBytes) {
      core.countDrop('tcp_send_buffer_full');
      return;
    }
    socket.cork();
    socket.write(frameHeader(packet));
    socket.write(packet);
    socket.uncork();
    counters[SLOT.tcpPacketsToClients]!++;
  }

  /** Ends connections whose flow left the table (idle past the timeout, transceiver removed). */
  tick(): void {
    for (const connection of this.#connections) {
      const flow = connection.flow;
      if (flow !== undefined && this.#options.core.flows.get(flow.key) !== flow) connection.socket.destroy();
    }
  }

  #onClose(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    clearTimeout(connection.firstPacketTimer);
    const left = (this.#perSource.get(connection.address) ?? 1) - 1;
    if (left > 0) this.#perSource.set(connection.address, left);
    else this.#perSource.delete(connection.address);
    const flow = connection.flow;
    if (flow !== undefined) {
      if (this.#byFlowKey.get(flow.key) === connection) this.#byFlowKey.delete(flow.key);
      this.#options.core.endTcpFlow(flow);
    }
    this.#options.counters[SLOT.tcpConnections] = this.#connections.size;
  }

  /** Stops listening and closes every connection (the clients' ICE moves to another relay). */
  stop(): void {
    for (const server of this.#servers) server.close();
    this.#servers.length = 0;
    for (const connection of [...this.#connections]) {
      connection.socket.destroy();
      this.#onClose(connection);
    }
  }
}
