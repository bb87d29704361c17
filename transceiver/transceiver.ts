// The transceiver process's state: its calls, the one tunnel socket they share, the pacer that
// steps every call's audio every 20 ms, the session cap and the draining state.
import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { literalLookup, type TransportAddress } from '../protocol/address.ts';
import { type Cidr, CidrSet } from '../protocol/cidr.ts';
import { deriveIcePassword, newUfrag, type RoutingKeyring } from '../protocol/ufrag.ts';
import { BackendUnavailableError } from './backend-connection.ts';
import { Call, type CallEndReason } from './call.ts';
import type { TransceiverConfig } from './config.ts';
import {
  addCallerAudio,
  type CallerAudioCounts,
  emptyCallerAudio,
  type TransceiverMetrics,
} from './metrics.ts';
import type { IceCredentials } from './peer.ts';
import { TunnelRouter } from './tunnel-router.ts';

/** An error the API turns into problem+json. */
export class TransceiverError extends Error {
  override name = 'TransceiverError';
  readonly code: string;
  readonly status: number;
  readonly retryAfterS: number | undefined;

  constructor(code: string, status: number, message: string, retryAfterS?: number) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

export interface TransceiverStatus {
  readonly transceiverId: number;
  readonly clusterId: number;
  readonly state: 'active' | 'draining';
  readonly sessions: number;
  readonly capacity: number;
}

const CLIENT_IDLE_MS = 60_000;

export class Transceiver {
  readonly config: TransceiverConfig;
  readonly #logger: Logger;
  readonly #metrics: TransceiverMetrics;
  #keyring: RoutingKeyring;
  readonly #calls = new Map<string, Call>();
  /** Calls being negotiated count against the cap too. */
  #pending = 0;
  #draining = false;
  #socket: Socket | undefined;
  readonly router: TunnelRouter;
  /** When the datagram being handled arrived (performance.now() ms). */
  #datagramAt = 0;
  #housekeeping: NodeJS.Timeout | undefined;
  /** The callers' audio counts of calls that have ended. */
  readonly #endedCallerAudio = emptyCallerAudio();

  constructor(
    config: TransceiverConfig,
    keyring: RoutingKeyring,
    logger: Logger,
    metrics: TransceiverMetrics,
  ) {
    this.config = config;
    this.#keyring = keyring;
    this.#logger = logger;
    this.#metrics = metrics;
    this.router = new TunnelRouter({
      sink: { send: (parts, relay) => this.#socket?.send(parts as Buffer[], relay.port, relay.address) },
      relays: new CidrSet(config.tunnel.allowedRelays),
    });
  }

  /** Binds the tunnel socket and starts the pacer. */
  async start(): Promise<void> {
    const { listen } = this.config.tunnel;
    const socket = createSocket({
      type: listen.family === 6 ? 'udp6' : 'udp4',
      recvBufferSize: 4 << 20,
      sendBufferSize: 4 << 20,
      // Replies go to relays' source addresses: always IP literals (see literalLookup).
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(listen.port, listen.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('message', (datagram, remote) => {
      this.#datagramAt = performance.now();
      const dropped = this.router.onDatagram(
        datagram,
        { address: remote.address, port: remote.port },
        Date.now(),
      );
      if (dropped !== undefined) this.#metrics.tunnelDrops.inc({ reason: dropped });
    });
    socket.on('error', (error) => this.#logger.debug({ err: error.message }, 'tunnel send failed'));
    this.#socket = socket;
    this.#housekeeping = setInterval(() => this.router.expireClients(Date.now(), CLIENT_IDLE_MS), 10_000);
  }

  /** The routing table's relay addresses, accepted beside the configured ones. */
  setRelaySources(sources: readonly Cidr[]): void {
    this.router.setRelays(new CidrSet([...this.config.tunnel.allowedRelays, ...sources]));
  }

  setKeyring(keyring: RoutingKeyring): void {
    this.#keyring = keyring;
  }

  #mintCredentials(): IceCredentials {
    const ufrag = newUfrag(this.#keyring, {
      clusterId: this.config.clusterId,
      transceiverId: this.config.transceiverId,
    });
    return { ufrag, password: deriveIcePassword(ufrag, this.#keyring.current) };
  }

  get draining(): boolean {
    return this.#draining;
  }

  status(): TransceiverStatus {
    return {
      transceiverId: this.config.transceiverId,
      clusterId: this.config.clusterId,
      state: this.#draining ? 'draining' : 'active',
      sessions: this.#calls.size + this.#pending,
      capacity: this.config.sessions.max,
    };
  }

  async createCall(request: {
    offer: string;
    relays?: readonly TransportAddress[] | undefined;
    tcpRelays?: readonly TransportAddress[] | undefined;
    metadata?: Record<string, unknown> | undefined;
  }): Promise<{ sessionId: string; answer: string; ufrag: string }> {
    if (this.#draining) throw new TransceiverError('draining', 503, 'this transceiver is draining', 1);
    if (this.#calls.size + this.#pending >= this.config.sessions.max) {
      throw new TransceiverError(
        'at-capacity',
        503,
        `all ${this.config.sessions.max} sessions are in use`,
        1,
      );
    }
    this.#pending++;
    const id = randomUUID();
    const credentials = this.#mintCredentials();
    try {
      const { call, answer } = await Call.start({
        id,
        offer: request.offer,
        relays: answerRelays(request, this.config),
        metadata: request.metadata ?? {},
        credentials,
        router: this.router,
        backend: this.config.backend,
        timeouts: {
          connectMs: this.config.sessions.connectTimeoutMs,
          mediaMs: this.config.sessions.mediaTimeoutMs,
          qualityMs: this.config.sessions.qualityIntervalMs,
        },
        logger: this.#logger,
        onConnected: (_call, setupMs) => this.#metrics.setupSeconds.observe(setupMs / 1000),
        onQuality: (_call, quality) => this.#metrics.observeQuality(quality),
        datagramArrivedAt: () => this.#datagramAt,
        onLatency: (direction, ms) => this.#metrics.audioLatency.observe({ direction }, ms / 1000),
        opusEncoder: {
          application: this.config.audio.opusApplication,
          complexity: this.config.audio.opusComplexity,
        },
        callerDtx: this.config.audio.callerDtx,
        maxQueueMs: this.config.audio.maxQueueSeconds * 1000,
        onBackendDrop: (reason) => this.#metrics.backendDrops.inc({ reason }),
        onBackendShed: (shedMs) => this.#metrics.backendShedSeconds.inc(shedMs / 1000),
        onBackendClear: (clearedMs) => {
          this.#metrics.backendClears.inc();
          this.#metrics.backendClearedSeconds.inc(clearedMs / 1000);
        },
        onEnded: (ended, reason) => this.#onEnded(ended, reason),
      });
      this.#calls.set(id, call);
      this.#metrics.sessionsCreated.inc();
      return { sessionId: id, answer, ufrag: credentials.ufrag };
    } catch (error) {
      if (error instanceof BackendUnavailableError) {
        this.#metrics.sessionsFailed.inc({ code: 'backend-unavailable' });
        throw new TransceiverError('backend-unavailable', 502, error.message);
      }
      this.#metrics.sessionsFailed.inc({ code: 'negotiation-failed' });
      throw new TransceiverError(
        'negotiation-failed',
        500,
        `the offer could not be answered: ${(error as Error).message}`,
      );
    } finally {
      this.#pending--;
    }
  }

  async reoffer(id: string, offer: string): Promise<{ answer: string; ufrag: string }> {
    const call = this.#calls.get(id);
    if (call === undefined) throw new TransceiverError('not-found', 404, `no session ${id}`);
    try {
      return await call.reoffer(offer, () => this.#mintCredentials());
    } catch (error) {
      throw new TransceiverError(
        'negotiation-failed',
        500,
        `the re-offer could not be answered: ${(error as Error).message}`,
      );
    }
  }

  endCall(id: string): boolean {
    const call = this.#calls.get(id);
    if (call === undefined) return false;
    call.end('client-hangup');
    return true;
  }

  #onEnded(call: Call, reason: CallEndReason): void {
    this.#calls.delete(call.id);
    addCallerAudio(this.#endedCallerAudio, call.callerAudio);
    this.#metrics.sessionsEnded.inc({ reason });
  }

  /** No new sessions; the calls in progress continue. */
  drain(): void {
    if (!this.#draining) this.#logger.info({ sessions: this.#calls.size }, 'draining');
    this.#draining = true;
  }

  /** Callers' audio counts since start: the ended calls' and the live ones'. */
  callerAudio(): CallerAudioCounts {
    const totals = emptyCallerAudio();
    addCallerAudio(totals, this.#endedCallerAudio);
    for (const call of this.#calls.values()) addCallerAudio(totals, call.callerAudio);
    return totals;
  }

  get calls(): ReadonlyMap<string, Call> {
    return this.#calls;
  }

  /** Drains, waits up to graceMs for calls to end, ends the rest, closes the socket. */
  async shutdown(graceMs: number): Promise<void> {
    this.drain();
    const deadline = Date.now() + graceMs;
    while (this.#calls.size > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    for (const call of [...this.#calls.values()]) call.end('shutdown');
    clearInterval(this.#housekeeping);
    await new Promise<void>((resolve) => (this.#socket ? this.#socket.close(() => resolve()) : resolve()));
    this.#socket = undefined;
  }
}

/**
 * The relays an answer names: the request's (UDP, then TCP) when it names any, else the configured
 * ones; TCP addresses carry `transport: 'tcp'` from here on.
 */
function answerRelays(
  request: {
    relays?: readonly TransportAddress[] | undefined;
    tcpRelays?: readonly TransportAddress[] | undefined;
  },
  config: { relays: readonly TransportAddress[]; tcpRelays: readonly TransportAddress[] },
): TransportAddress[] {
  const named = request.relays !== undefined && request.relays.length > 0;
  const udp = named ? request.relays! : config.relays;
  const tcp = named ? (request.tcpRelays ?? []) : config.tcpRelays;
  return [...udp, ...tcp.map((relay): TransportAddress => ({ ...relay, transport: 'tcp' }))];
}
