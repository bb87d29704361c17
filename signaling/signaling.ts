// The signaling process: follows the routing table, polls the transceivers' status, serves WHIP on
// the public port and health, readiness and metrics on the ops port, and shuts down gracefully.
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { RoutingTable } from '../protocol/routing-table.ts';
import type { RoutingSource } from '../routing/routing-source.ts';
import { createRoutingSource } from '../routing/routing-source-factory.ts';
import type { SignalingConfig } from './config.ts';
import { createSignalingMetrics } from './metrics.ts';
import { StatusCache } from './status-cache.ts';
import { TransceiverClient } from './transceiver-client.ts';
import { buildWhipApp } from './whip-app.ts';

export class SignalingStartError extends Error {
  override name = 'SignalingStartError';
}

export interface SignalingHandle {
  /** Bound ports (useful when configured as 0). */
  readonly httpPort: number;
  readonly opsPort: number;
  /**
   * Turns unready, keeps serving for config.shutdown.drainMs, then stops accepting connections,
   * finishes the requests in flight and stops everything. Idempotent.
   */
  shutdown(): Promise<void>;
  /** Resolves once stopped. */
  readonly stopped: Promise<void>;
}

function boundPort(server: { address(): unknown }, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address !== null && 'port' in address
    ? Number(address.port)
    : fallback;
}

export async function startSignaling(
  config: SignalingConfig,
  logger: Logger,
  /** Default: the one `config.routingTable` names (a file or a Kubernetes ConfigMap). */
  source?: RoutingSource,
): Promise<SignalingHandle> {
  const client = new TransceiverClient({
    requestTimeoutMs: config.transceivers.requestTimeoutMs,
    statusTimeoutMs: config.transceivers.statusTimeoutMs,
  });
  // The metrics read the cache at scrape time and the cache reports into the metrics.
  let statuses: StatusCache | undefined;
  const metrics = createSignalingMetrics(
    () => statuses?.availability() ?? { available: 0, full: 0, draining: 0, unavailable: 0 },
  );
  statuses = new StatusCache({
    client,
    intervalMs: config.transceivers.statusIntervalMs,
    staleMs: config.transceivers.statusStaleMs,
    onPollError(id, error, first) {
      metrics.statusPollErrors.inc({ transceiver: String(id) });
      if (first)
        logger.warn({ transceiver: id, error }, 'transceiver status unavailable; no sessions go there');
    },
    onRecovered(id) {
      logger.info({ transceiver: id }, 'transceiver status available again');
    },
  });
  const cache = statuses;

  let ready = false;
  let shuttingDown = false;
  const ops = Fastify({ logger: false });
  ops.get('/healthz', async () => ({ status: 'ok' }));
  ops.get('/readyz', async (_request, reply) =>
    ready ? { status: 'ready' } : reply.code(503).send({ status: shuttingDown ? 'draining' : 'starting' }),
  );
  ops.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  try {
    await ops.listen({ host: config.ops.host, port: config.ops.port });
  } catch (error) {
    throw new SignalingStartError(
      `cannot serve ops HTTP on ${config.ops.host}:${config.ops.port}: ${(error as Error).message}`,
    );
  }

  const routingSource =
    source ??
    (await createRoutingSource(config.routingTable, {
      logger,
      onWatchRestart: (reason) => metrics.routingWatchRestarts.inc({ reason }),
    }));
  let table: RoutingTable;
  try {
    const first = await routingSource.start({
      onTable(next) {
        table = next;
        metrics.routingTableGeneration.set(next.generation);
        void cache.setTable(next);
        logger.info(
          { generation: next.generation, transceivers: next.transceivers.length },
          'routing table loaded',
        );
      },
      onInvalid(error) {
        metrics.routingTableErrors.inc();
        logger.error({ error }, 'routing table rejected; keeping the previous one');
      },
    });
    table = first.table;
  } catch (error) {
    await ops.close();
    throw new SignalingStartError((error as Error).message);
  }
  metrics.routingTableGeneration.set(table.generation);
  if (!table.transceivers.some((entry) => entry.api !== undefined)) {
    logger.warn('no transceiver in the routing table has an api URL: every offer will get 503 no-capacity');
  }
  // One status round (bounded by the status timeout) before taking offers.
  void cache.setTable(table);
  await cache.start();

  const whip = buildWhipApp({
    config,
    routingTable: () => table,
    statuses: cache,
    client,
    metrics,
    logger,
    shuttingDown: () => shuttingDown,
  });
  const stopBackground = () => {
    cache.close();
    routingSource.close();
  };
  try {
    await whip.listen({ host: config.http.host, port: config.http.port });
  } catch (error) {
    stopBackground();
    await ops.close();
    throw new SignalingStartError(
      `cannot serve WHIP on ${config.http.host}:${config.http.port}: ${(error as Error).message}`,
    );
  }

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    shutdownPromise ??= (async () => {
      shuttingDown = true;
      ready = false;
      logger.info({ drainMs: config.shutdown.drainMs }, 'shutting down: unready, still serving');
      if (config.shutdown.drainMs > 0) await sleep(config.shutdown.drainMs);
      // Stops accepting, closes idle connections, waits for the requests in flight (their answers
      // carry Connection: close). Those are bounded by the transceiver timeouts; past that bound,
      // whatever is still open is cut.
      const bound = config.transceivers.requestTimeoutMs * config.placement.maxAttempts + 2_000;
      const force = setTimeout(() => whip.server.closeAllConnections(), bound);
      await whip.close();
      clearTimeout(force);
      stopBackground();
      await ops.close();
      logger.info('signaling stopped');
      resolveStopped();
    })();
    return shutdownPromise;
  };

  ready = true;
  const httpPort = boundPort(whip.server, config.http.port);
  const opsPort = boundPort(ops.server, config.ops.port);
  const availability = cache.availability();
  logger.info(
    {
      whip: `${config.http.host}:${httpPort}`,
      ops: `${config.ops.host}:${opsPort}`,
      auth: config.auth.tokens.length > 0 ? `${config.auth.tokens.length} token(s)` : 'off',
      relays: config.relays.length,
      generation: table.generation,
      ...availability,
    },
    'signaling ready',
  );
  if (config.auth.tokens.length === 0)
    logger.warn('authentication is off: anyone who reaches the port can place calls');
  return { httpPort, opsPort, shutdown, stopped };
}
