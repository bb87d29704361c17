// A running transceiver: keys, the call state, the internal API. `main.ts` wraps it in a process;
// the local edge and the tests start it in-process.
import type { Logger } from 'pino';
import { formatTransportAddress } from '../protocol/address.ts';
import { formatHostPort, originOf } from '../protocol/host-port.ts';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { KeyringSource } from '../routing/keyring-source.ts';
import type { RoutingSource } from '../routing/routing-source.ts';
import { createRoutingSource } from '../routing/routing-source-factory.ts';
import { createTransceiverApi } from './api.ts';
import type { TransceiverConfig } from './config.ts';
import { createTransceiverMetrics, emptyCallerAudio } from './metrics.ts';
import { Transceiver } from './transceiver.ts';

export class TransceiverStartError extends Error {
  override name = 'TransceiverStartError';
}

export interface TransceiverService {
  readonly transceiver: Transceiver;
  readonly apiUrl: string;
  /** Drains, lets calls run up to `graceMs`, ends the rest, closes everything. Idempotent. */
  shutdown(graceMs?: number): Promise<void>;
  /** Resolves once shutdown() has finished. */
  readonly stopped: Promise<void>;
}

export async function startTransceiver(
  config: TransceiverConfig,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TransceiverService> {
  let transceiver: Transceiver | undefined;
  const metrics = createTransceiverMetrics({
    sessions: () => transceiver?.status().sessions ?? 0,
    capacity: () => config.sessions.max,
    draining: () => transceiver?.draining ?? false,
    queuedMs: () => [...(transceiver?.calls.values() ?? [])].map((call) => call.queuedMs),
    tunnelSendDrops: () => transceiver?.router.sendDrops ?? new Map(),
    pathsValidated: () => transceiver?.router.pathsValidated ?? 0,
    mediaPathsBound: () => transceiver?.router.mediaPathsBound ?? 0,
    callerAudio: () => transceiver?.callerAudio() ?? emptyCallerAudio(),
  });
  const keys = new KeyringSource(config.routingKeys?.file, env);
  let loaded: Awaited<ReturnType<KeyringSource['start']>>;
  try {
    loaded = await keys.start({
      onKeyring: (next) => {
        transceiver?.setKeyring(next.keyring);
        logger.info('routing keys reloaded');
      },
      onInvalid: (error) => logger.error({ error }, 'routing keys rejected; keeping the previous ones'),
    });
  } catch (error) {
    throw new TransceiverStartError((error as Error).message);
  }
  transceiver = new Transceiver(config, loaded.keyring, logger, metrics);
  let routing: RoutingSource | undefined;
  try {
    routing = await followRelaySources(config, transceiver, logger);
  } catch (error) {
    keys.close();
    throw new TransceiverStartError((error as Error).message);
  }
  try {
    await transceiver.start();
  } catch (error) {
    keys.close();
    routing?.close();
    const { listen } = config.tunnel;
    throw new TransceiverStartError(
      `cannot bind the tunnel socket ${formatTransportAddress(listen)}: ${(error as Error).message}`,
    );
  }
  const api = createTransceiverApi(transceiver, metrics, { tokens: config.api.tokens });
  try {
    await api.listen({ host: config.api.host, port: config.api.port });
  } catch (error) {
    await transceiver.shutdown(0);
    keys.close();
    routing?.close();
    throw new TransceiverStartError(
      `cannot serve the API on ${formatHostPort(config.api.host, config.api.port)}: ${(error as Error).message}`,
    );
  }
  const address = api.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.api.port;
  logger.info(
    {
      transceiverId: config.transceiverId,
      tunnel: formatTransportAddress(config.tunnel.listen),
      api: formatHostPort(config.api.host, port),
      capacity: config.sessions.max,
    },
    'transceiver ready',
  );
  let stopping: Promise<void> | undefined;
  let markStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    markStopped = resolve;
  });
  const running = transceiver;
  return {
    transceiver: running,
    apiUrl: originOf('http', config.api.host, port),
    stopped,
    shutdown(graceMs = config.shutdown.graceMs) {
      stopping ??= (async () => {
        logger.info({ graceMs }, 'draining: calls in progress may run until the grace period ends');
        await running.shutdown(graceMs);
        await api.close();
        keys.close();
        routing?.close();
        logger.info('transceiver stopped');
        markStopped();
      })();
      return stopping;
    },
  };
}

/**
 * Follows the routing table's `relaySources` (the operator's relay pods) so that tunnel datagrams
 * from a new relay are accepted as soon as it is published. A table for another cluster is refused.
 */
async function followRelaySources(
  config: TransceiverConfig,
  transceiver: Transceiver,
  logger: Logger,
): Promise<RoutingSource | undefined> {
  if (config.routingTable === undefined) return undefined;
  const source = await createRoutingSource(config.routingTable, { logger });
  const apply = (table: RoutingTable): boolean => {
    if (table.clusterId !== config.clusterId) {
      logger.error(
        { tableCluster: table.clusterId, clusterId: config.clusterId },
        'routing table is for another cluster; keeping the previous relay addresses',
      );
      return false;
    }
    transceiver.setRelaySources(table.relaySources);
    return true;
  };
  const first = await source.start({
    onTable: (table) => {
      if (apply(table)) logger.info({ relaySources: table.relaySources.length }, 'relay addresses updated');
    },
    onInvalid: (error) =>
      logger.error({ error }, 'routing table rejected; keeping the previous relay addresses'),
  });
  if (!apply(first.table)) {
    source.close();
    throw new Error(
      `the routing table is for cluster ${first.table.clusterId}, this transceiver is in cluster ${config.clusterId}`,
    );
  }
  return source;
}
