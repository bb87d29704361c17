// The relay process: loads keys and the routing table, runs one worker thread per core, serves
// health, readiness and metrics over HTTP, follows table and key updates, and shuts down gracefully.

import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { formatTransportAddress } from '../protocol/address.ts';
import { formatHostPort } from '../protocol/host-port.ts';
import { parseRoutingTable, type RoutingTable } from '../protocol/routing-table.ts';
import { KeyringSource } from '../routing/keyring-source.ts';
import type { RoutingSource } from '../routing/routing-source.ts';
import { createRoutingSource } from '../routing/routing-source-factory.ts';
import { createHttpFace } from '../runtime/http-face.ts';
import type { RelayConfig } from './config.ts';
import { newCounters } from './counters.ts';
import { createRelayMetrics } from './metrics.ts';
import { mergePeers } from './peer-routes.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-thread.ts';

/** An edge relay configured with its peers only: no routing table to follow (null reaches the workers). */
function peersOnlySource(clusterId: number): RoutingSource {
  const table = parseRoutingTable({ clusterId });
  if (!table.ok) throw new Error(table.error);
  return { start: async () => ({ table: table.table, document: null }), close() {} };
}

export class RelayStartError extends Error {
  override name = 'RelayStartError';
}

export interface RelayHandle {
  /** The HTTP server's bound port (useful when configured as 0). */
  readonly httpPort: number;
  /** Stops taking new flows, drains for config.shutdown.drainMs, then stops everything. Idempotent. */
  shutdown(): Promise<void>;
  /** Resolves when the relay has stopped, by shutdown() or because a worker died (then with an error). */
  readonly stopped: Promise<Error | undefined>;
}

interface RunningWorker {
  readonly thread: Worker;
  readonly counters: Float64Array;
  alive: boolean;
}

function startWorker(init: WorkerInit): Promise<RunningWorker> {
  const thread = new Worker(new URL('./worker-thread.ts', import.meta.url), { workerData: init });
  const worker: RunningWorker = { thread, counters: init.counters, alive: true };
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromWorker) => {
      if (message.type === 'ready') {
        thread.off('message', onMessage);
        resolve(worker);
      } else if (message.type === 'start-failed') {
        const listens = [
          ...init.config.listen.map(formatTransportAddress),
          ...init.config.tcp.listen.map((address) => `${formatTransportAddress(address)}/tcp`),
        ].join(', ');
        const hint = message.code === 'EADDRINUSE' ? ` (is another process using ${listens}?)` : '';
        reject(new RelayStartError(`worker ${init.index} could not start: ${message.message}${hint}`));
      }
    };
    thread.on('message', onMessage);
    thread.once('error', (error) =>
      reject(new RelayStartError(`worker ${init.index} failed: ${error.message}`)),
    );
  });
}

type Broadcast = (message: ToWorker) => void;
type RelayMetrics = ReturnType<typeof createRelayMetrics>;

/** The routing keys, followed live: every reload goes to the workers. */
async function openRoutingKeys(
  config: RelayConfig,
  env: NodeJS.ProcessEnv,
  metrics: RelayMetrics,
  logger: Logger,
  broadcast: Broadcast,
): Promise<{ keys: KeyringSource; document: unknown }> {
  const keys = new KeyringSource(config.routingKeys?.file, env);
  try {
    const loaded = await keys.start({
      onKeyring(next) {
        broadcast({ type: 'keyring', document: next.document });
        logger.info('routing keys reloaded');
      },
      onInvalid(error) {
        metrics.keyringErrors.inc();
        logger.error({ error }, 'routing keys rejected; keeping the previous ones');
      },
    });
    return { keys, document: loaded.document };
  } catch (error) {
    throw new RelayStartError((error as Error).message);
  }
}

/** Why a routing table cannot be this relay's, if it cannot. */
function clusterProblemOf(config: RelayConfig, table: RoutingTable): string | undefined {
  return config.clusterId === undefined || table.clusterId === config.clusterId
    ? undefined
    : `routing table is for cluster ${table.clusterId}, this relay serves cluster ${config.clusterId}`;
}

/**
 * The routing table, followed live (a file, a ConfigMap, or only the configured peers of an edge
 * relay): the first one is checked and returned, each valid update goes to the workers.
 */
async function openRoutingTable(
  config: RelayConfig,
  logger: Logger,
  metrics: RelayMetrics,
  broadcast: Broadcast,
  source: RoutingSource | undefined,
): Promise<{ source: RoutingSource; first: { table: RoutingTable; document: unknown } }> {
  const routingSource =
    source ??
    (config.routingTable === undefined
      ? peersOnlySource(config.clusterId)
      : await createRoutingSource(config.routingTable, {
          logger,
          onWatchRestart: (reason) => metrics.routingWatchRestarts.inc({ reason }),
        }));
  let first: { table: RoutingTable; document: unknown };
  try {
    first = await routingSource.start({
      onTable(table, document) {
        const problem = clusterProblemOf(config, table);
        if (problem !== undefined) {
          metrics.routingTableErrors.inc();
          logger.error({ problem }, 'routing table rejected; keeping the previous one');
          return;
        }
        broadcast({ type: 'routing-table', document });
        logger.info(
          { generation: table.generation, transceivers: table.transceivers.length },
          'routing table loaded',
        );
      },
      onInvalid(error) {
        metrics.routingTableErrors.inc();
        logger.error({ error }, 'routing table rejected; keeping the previous one');
      },
    });
  } catch (error) {
    throw new RelayStartError((error as Error).message);
  }
  const problem =
    clusterProblemOf(config, first.table) ??
    (config.mode === 'edge' && mergePeers(config.peers, first.table.peers, undefined).length === 0
      ? 'an edge relay needs peer clusters: set peers, or a routing table that lists some'
      : undefined);
  if (problem !== undefined) {
    routingSource.close();
    throw new RelayStartError(problem);
  }
  return { source: routingSource, first };
}

/** Starts `config.workerCount` workers one after the other; none is left running if one fails. */
async function startWorkers(
  config: RelayConfig,
  routingTable: unknown,
  keyring: unknown,
): Promise<RunningWorker[]> {
  const workers: RunningWorker[] = [];
  try {
    for (let index = 0; index < config.workerCount; index++)
      workers.push(await startWorker({ index, config, counters: newCounters(), routingTable, keyring }));
    return workers;
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.thread.terminate()));
    throw error;
  }
}

/** Asks every live worker to stop (it writes its last Redis batch); terminates one that takes over 5 s. */
async function stopWorkers(workers: readonly RunningWorker[]): Promise<void> {
  const done = workers
    .filter((worker) => worker.alive)
    .map(
      (worker) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            worker.thread.terminate().then(() => resolve());
          }, 5_000);
          worker.thread.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          worker.thread.postMessage({ type: 'stop' } satisfies ToWorker);
        }),
    );
  await Promise.all(done);
}

export async function startRelay(
  config: RelayConfig,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
  /** Default: the one `config.routingTable` names (a file or a Kubernetes ConfigMap). */
  source?: RoutingSource,
): Promise<RelayHandle> {
  const workers: RunningWorker[] = [];
  const metrics = createRelayMetrics(() => workers.map((worker) => worker.counters));
  const broadcast: Broadcast = (message) => {
    for (const worker of workers) if (worker.alive) worker.thread.postMessage(message);
  };
  const { keys, document: keyring } = await openRoutingKeys(config, env, metrics, logger, broadcast);
  let routing: Awaited<ReturnType<typeof openRoutingTable>>;
  try {
    routing = await openRoutingTable(config, logger, metrics, broadcast, source);
  } catch (error) {
    keys.close();
    throw error;
  }
  const { first } = routing;
  const closeSources = () => {
    routing.source.close();
    keys.close();
  };

  let ready = false;
  let shuttingDown = false;
  const http = createHttpFace({
    registry: metrics.registry,
    notHealthy: () => {
      const dead = workers.filter((worker) => !worker.alive).length;
      return dead === 0 ? undefined : { status: 'worker-died', dead };
    },
    notReady: () => (ready ? undefined : { status: shuttingDown ? 'draining' : 'starting' }),
  });
  try {
    await http.listen({ host: config.http.host, port: config.http.port });
  } catch (error) {
    closeSources();
    throw new RelayStartError(
      `cannot serve HTTP on ${formatHostPort(config.http.host, config.http.port)}: ${(error as Error).message}`,
    );
  }
  try {
    workers.push(...(await startWorkers(config, first.document, keyring)));
  } catch (error) {
    await http.close();
    closeSources();
    throw error;
  }

  let resolveStopped: (error: Error | undefined) => void = () => {};
  const stopped = new Promise<Error | undefined>((resolve) => {
    resolveStopped = resolve;
  });
  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (cause?: Error): Promise<void> => {
    shutdownPromise ??= (async () => {
      shuttingDown = true;
      ready = false;
      logger.info(
        { drainMs: config.shutdown.drainMs },
        'draining: no new flows, existing flows keep forwarding',
      );
      broadcast({ type: 'drain' });
      if (cause === undefined && config.shutdown.drainMs > 0) await sleep(config.shutdown.drainMs);
      await stopWorkers(workers);
      await http.close();
      closeSources();
      logger.info('relay stopped');
      resolveStopped(cause);
    })();
    return shutdownPromise;
  };

  for (const worker of workers) {
    worker.thread.on('error', (error) => {
      logger.fatal({ err: error.message }, 'relay worker crashed');
    });
    worker.thread.on('exit', (code) => {
      worker.alive = false;
      if (!shuttingDown) {
        logger.fatal({ code }, 'relay worker exited unexpectedly; stopping the relay');
        void shutdown(new Error(`worker exited with code ${code}`));
      }
    });
  }

  ready = true;
  const httpAddress = http.server.address();
  const httpPort =
    typeof httpAddress === 'object' && httpAddress !== null ? httpAddress.port : config.http.port;
  logger.info(
    {
      listen: config.listen.map(formatTransportAddress),
      workers: config.workerCount,
      http: formatHostPort(config.http.host, httpPort),
      redis: config.redis !== undefined,
      generation: first.table.generation,
      mode: config.mode,
      peers: mergePeers(config.peers, first.table.peers, config.clusterId).length,
    },
    'relay ready',
  );
  return { httpPort, shutdown: () => shutdown(), stopped };
}
