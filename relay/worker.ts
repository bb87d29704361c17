// One relay worker: its own public sockets, UDP and TCP (SO_REUSEPORT, so the kernel spreads client
// flows and connections over the workers), its own tunnel sockets, flow table and Redis connection.
// The code here only performs: every decision is RelayCore's (the flow cache's lookups included: the
// worker carries a LookupRequest to Redis and the answer back).
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { type AddressFamily, literalLookup, type TransportAddress } from '../protocol/address.ts';
import { parseKeyringDocument } from '../protocol/keyring.ts';
import { parseRoutingTable, type RoutingTable } from '../protocol/routing-table.ts';
import { TUNNEL_MAGIC } from '../protocol/tunnel.ts';
import type { RelayConfig } from './config.ts';
import { SLOT } from './counters.ts';
import { FlowTable } from './flow-table.ts';
import { localClusterOf, routesInputFor } from './peer-routes.ts';
import { RedisFlowCache } from './redis-flow-cache.ts';
import {
  type ClientDecision,
  type ForwardTarget,
  type LookupAnswer,
  LookupRequest,
  RelayCore,
} from './relay-core.ts';
import { Routes } from './routes.ts';
import { SourceRateLimiter } from './source-rate-limiter.ts';
import { TcpFront } from './tcp-front.ts';

const TICK_MS = 1_000;
const RECORD_FLUSH_MS = 100;
/**
 * How long a starting worker waits for its Redis connection before it opens its public sockets: a
 * restarted relay's first packets are live calls to recover, and a lookup needs the connection (until
 * then each would fail and spend its source's lookup budget). Past it the relay starts without Redis.
 */
const REDIS_CONNECT_WAIT_MS = 2_000;

export interface RelayWorkerOptions {
  readonly config: RelayConfig;
  readonly counters: Float64Array;
  /**
   * Routing table and keyring documents as loaded by the main thread (validated again here). No
   * routing table (null) for an edge relay configured with its peers only.
   */
  readonly routingTable: unknown;
  readonly keyring: unknown;
  readonly logger: Logger;
}

function bindSocket(
  type: 'udp4' | 'udp6',
  address: string,
  port: number,
  reusePort: boolean,
  bufferBytes: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({
      type,
      reusePort,
      ipv6Only: type === 'udp6',
      recvBufferSize: bufferBytes,
      sendBufferSize: bufferBytes,
      lookup: literalLookup,
    });
    const onError = (error: Error) => {
      socket.close();
      reject(error);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export class RelayWorker {
  readonly core: RelayCore;
  readonly #config: RelayConfig;
  readonly #logger: Logger;
  readonly #counters: Float64Array;
  readonly #publicSockets: Socket[] = [];
  #tunnel4: Socket | undefined;
  #tunnel6: Socket | undefined;
  readonly #cache: RedisFlowCache | undefined;
  readonly #tcp: TcpFront | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  #writing: Promise<void> | undefined;
  #lastRefresh = 0;

  constructor(options: RelayWorkerOptions) {
    const { config } = options;
    this.#config = config;
    this.#logger = options.logger;
    this.#counters = options.counters;
    let table: RoutingTable | undefined;
    if (options.routingTable !== null) {
      const parsed = parseRoutingTable(options.routingTable);
      if (!parsed.ok) throw new Error(`routing table: ${parsed.error}`);
      table = parsed.table;
    }
    const keyring = parseKeyringDocument(options.keyring);
    if (!keyring.ok) throw new Error(`routing keys: ${keyring.error}`);
    this.core = new RelayCore({
      clusterId: localClusterOf(config),
      keyring: keyring.keyring,
      routes: this.#routesFor(table),
      flows: new FlowTable({ maxFlows: config.flows.maxFlows, idleTimeoutMs: config.flows.idleTimeoutMs }),
      newFlowLimiter: new SourceRateLimiter(config.flows.newFlowsPerSourcePerSecond),
      counters: options.counters,
      recovery: config.redis !== undefined,
      ...(config.redis && {
        lookups: {
          maxConcurrent: config.redis.maxConcurrentLookups,
          lookupsPerSourcePerSecond: config.redis.lookupsPerSourcePerSecond,
          negativeCacheMs: config.redis.negativeCacheMs,
        },
      }),
    });
    if (config.tcp.listen.length > 0) {
      this.#tcp = new TcpFront({
        config: config.tcp,
        core: this.core,
        counters: options.counters,
        logger: this.#logger,
        forward: (flow, packet) => this.#sendToTransceiver(flow, packet),
      });
    }
    if (config.redis) {
      // An edge relay's records live apart from any cluster's: the same client address may have a
      // record at its edge relay and at the cluster relay behind it.
      const scope = config.mode === 'edge' ? 'edge' : String(config.clusterId);
      this.#cache = new RedisFlowCache({ ...config.redis, scope }, this.#logger);
    }
  }

  async start(): Promise<void> {
    const { config } = this;
    const buffer = config.socketBufferBytes;
    if (this.#cache && !(await this.#cache.waitConnected(REDIS_CONNECT_WAIT_MS)))
      this.#logger.warn(
        { waitedMs: REDIS_CONNECT_WAIT_MS },
        'starting without redis: flows recover once it is reachable',
      );
    try {
      for (const [index, listen] of config.listen.entries()) {
        const socket = await bindSocket(
          listen.family === 6 ? 'udp6' : 'udp4',
          listen.address,
          listen.port,
          true,
          buffer,
        );
        socket.on('message', (packet, remote) =>
          this.#onClientPacket(packet, remote.address, remote.family === 'IPv6' ? 6 : 4, remote.port, index),
        );
        socket.on('error', (error) => this.#onSendError(error));
        this.#publicSockets.push(socket);
      }
      this.#tunnel4 = await bindSocket('udp4', config.tunnel.bindV4, 0, false, buffer);
      if (config.tunnel.bindV6 !== undefined) {
        this.#tunnel6 = await bindSocket('udp6', config.tunnel.bindV6, 0, false, buffer);
      }
      await this.#tcp?.listen();
    } catch (error) {
      this.#closeSockets();
      throw error;
    }
    for (const socket of [this.#tunnel4, this.#tunnel6]) {
      socket?.on('message', (datagram, remote) =>
        this.#onTunnelDatagram(datagram, remote.address, remote.port),
      );
      socket?.on('error', (error) => this.#onSendError(error));
    }
    this.#timers.push(setInterval(() => this.#tick(), TICK_MS));
    if (this.#cache) this.#timers.push(setInterval(() => this.#flushRecords(), RECORD_FLUSH_MS));
  }

  /** Address families the tunnel sockets cover (peer relays of other families are never picked). */
  #routesFor(table: RoutingTable | undefined, previous?: Routes): Routes {
    const families = new Set<4 | 6>([4]);
    if (this.#config.tunnel.bindV6 !== undefined) families.add(6);
    return new Routes(routesInputFor(this.#config, table), Date.now(), previous, families);
  }

  get config(): RelayConfig {
    return this.#config;
  }

  /** The tunnel sockets' local addresses (the source transceivers see). */
  tunnelAddresses(): TransportAddress[] {
    const out: TransportAddress[] = [];
    for (const socket of [this.#tunnel4, this.#tunnel6]) {
      if (!socket) continue;
      const local = socket.address();
      out.push({ family: local.family === 'IPv6' ? 6 : 4, address: local.address, port: local.port });
    }
    return out;
  }

  #onClientPacket(
    packet: Buffer,
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
  ): void {
    // A tunnel datagram on the public port: an edge relay forwarding a client (global relay tier).
    if (packet[0] === TUNNEL_MAGIC) {
      this.#onEdgeDatagram(packet, address, port, socketIndex);
      return;
    }
    const decision: ClientDecision = this.core.onClientPacket(
      packet,
      address,
      family,
      port,
      socketIndex,
      Date.now(),
    );
    if (decision instanceof LookupRequest) this.#lookup(decision);
    else if (typeof decision === 'object') this.#sendToTransceiver(decision, packet);
  }

  #onEdgeDatagram(datagram: Buffer, address: string, port: number, socketIndex: number): void {
    const decision = this.core.onEdgeDatagram(datagram, address, port, socketIndex, Date.now());
    if (decision instanceof LookupRequest) this.#lookup(decision);
    // The edge's header names the same client as the target's: the client's packet follows it.
    else if (typeof decision === 'object')
      this.#sendToTransceiver(decision, datagram.subarray(decision.header.length));
  }

  #sendToTransceiver(flow: ForwardTarget, packet: Buffer): void {
    const tunnel = flow.route.tunnel;
    const socket = tunnel.family === 4 ? this.#tunnel4 : this.#tunnel6;
    if (socket === undefined) {
      this.core.countSendError();
      return;
    }
    socket.send([flow.header, packet], tunnel.port, tunnel.address);
  }

  #onTunnelDatagram(datagram: Buffer, address: string, port: number): void {
    const decision = this.core.onTunnelPacket(datagram, address, port, Date.now());
    if (typeof decision === 'string') return;
    const via = decision.via;
    if (via === undefined && decision.client.transport === 'tcp') {
      this.#tcp?.deliver(decision, datagram.subarray(decision.header.length));
      return;
    }
    const socket = this.#publicSockets[decision.socketIndex]!;
    if (via === undefined) {
      socket.send(datagram.subarray(decision.header.length), decision.client.port, decision.client.address);
    } else {
      // Back through the edge relay the client's packets came through: the header names the client.
      socket.send(datagram, via.port, via.address);
    }
  }

  #onSendError(error: Error): void {
    // An unconnected UDP socket reports send failures (e.g. EPERM, ENOBUFS) here; ICMP errors never
    // reach it. Count and carry on: one bad destination must not stop the relay.
    this.core.countSendError();
    this.#logger.debug({ err: error.message }, 'udp send failed');
  }

  /** Asks the flow cache; the core holds the packets and decides what the answer means. */
  #lookup(request: LookupRequest): void {
    const answered = (answer: LookupAnswer) => {
      const released = this.core.settleLookup(request.key, answer, Date.now());
      if (released === undefined) return;
      for (const packet of released.packets) this.#sendToTransceiver(released.target, packet);
    };
    this.#cache!.lookup(request.address, request.port, request.ssrc).then(answered, () => answered('error'));
  }

  #tick(): void {
    const now = Date.now();
    this.core.tick(now);
    this.#tcp?.tick();
    if (this.#cache) this.#counters[SLOT.redisConnected] = this.#cache.connected ? 1 : 0;
  }

  /** Writes new flows to Redis in batches; every ttl/3 also refreshes flows that saw traffic. */
  #flushRecords(): void {
    const cache = this.#cache;
    if (!cache || this.#writing) return;
    const now = Date.now();
    const batch = this.core.takeUnrecorded();
    const refreshMs = (this.#config.redis!.ttlSeconds * 1000) / 3;
    if (now - this.#lastRefresh >= refreshMs) {
      this.#lastRefresh = now;
      batch.push(...this.core.staleRecords());
    }
    if (batch.length === 0) return;
    const records = batch.map((flow) => ({
      address: flow.client.address,
      port: flow.client.port,
      ufrag: flow.ufrag,
      ssrc: flow.ssrc,
    }));
    this.#writing = cache
      .record(records)
      .then(
        (failed) => {
          this.#counters[SLOT.redisWrites]! += batch.length - failed;
          this.#counters[SLOT.redisWriteErrors]! += failed;
          if (failed === 0) for (const flow of batch) flow.recordedAt = now;
        },
        () => {
          // Not recorded: recordedAt stays behind lastSeen, so the next refresh pass writes them again.
          this.#counters[SLOT.redisWriteErrors]! += batch.length;
        },
      )
      .finally(() => {
        this.#writing = undefined;
      });
  }

  applyRoutingTable(document: unknown): void {
    const table = parseRoutingTable(document);
    if (table.ok) this.core.setRoutes(this.#routesFor(table.table, this.core.routes));
  }

  applyKeyring(document: unknown): void {
    const keyring = parseKeyringDocument(document);
    if (keyring.ok) this.core.setKeyring(keyring.keyring);
  }

  startDraining(): void {
    this.core.startDraining();
  }

  /** Closes the sockets, then waits for the last Redis write. */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#closeSockets();
    if (this.#cache) {
      await this.#writing;
      this.#flushRecords();
      await this.#writing;
      await this.#cache.close();
    }
  }

  #closeSockets(): void {
    this.#tcp?.stop();
    for (const socket of [...this.#publicSockets, this.#tunnel4, this.#tunnel6]) {
      try {
        socket?.close();
      } catch {
        // already closed
      }
    }
    this.#publicSockets.length = 0;
  }
}
