// The signaling process: follows the routing table (or each cluster's, with `clusters`), polls the
// transceivers' status, serves WHIP on the public port and health, readiness and metrics on the ops
// port, and shuts down gracefully.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { formatHostPort } from '../protocol/host-port.ts';
import type { RoutingSource } from '../routing/routing-source.ts';
import { createHttpFace } from '../runtime/http-face.ts';
import { type ClusterConfig, type FollowedClusters, followClusters } from './clusters.ts';
import type { SignalingConfig } from './config.ts';
import { createSignalingMetrics } from './metrics.ts';
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
  /**
   * Default: the one `config.routingTable` names (a file or a Kubernetes ConfigMap). One cluster
   * only: with `clusters`, each cluster's `routingTable` names its source.
   */
  source?: RoutingSource,
): Promise<SignalingHandle> {
  // Each cluster gets a client with its own API token (followClusters); this one, with the shared
  // token, is the WHIP routes' fallback.
  const client = new TransceiverClient({
    requestTimeoutMs: config.transceivers.requestTimeoutMs,
    statusTimeoutMs: config.transceivers.statusTimeoutMs,
    token: config.transceivers.apiTokens[0],
  });
  // The metrics read the caches at scrape time and the caches report into the metrics.
  let followed: FollowedClusters | undefined;
  const metrics = createSignalingMetrics(
    () => followed?.availability() ?? { available: 0, full: 0, draining: 0, unavailable: 0 },
  );

  let ready = false;
  let shuttingDown = false;
  const ops = createHttpFace({
    registry: metrics.registry,
    notReady: () => (ready ? undefined : { status: shuttingDown ? 'draining' : 'starting' }),
  });
  try {
    await ops.listen({ host: config.ops.host, port: config.ops.port });
  } catch (error) {
    throw new SignalingStartError(
      `cannot serve ops HTTP on ${formatHostPort(config.ops.host, config.ops.port)}: ${(error as Error).message}`,
    );
  }

  // One cluster (`routingTable`, `relays`) or several (`clusters`): each followed the same way.
  const clusterConfigs: ClusterConfig[] = config.clusters ?? [
    {
      routingTable: config.routingTable!,
      relays: config.relays,
      tcpRelays: config.tcpRelays,
      region: undefined,
    },
  ];
  try {
    followed = await followClusters(clusterConfigs, {
      transceivers: config.transceivers,
      metrics,
      logger,
      ...(source === undefined || config.clusters !== undefined ? {} : { sourceFor: async () => source }),
    });
  } catch (error) {
    await ops.close();
    throw new SignalingStartError((error as Error).message);
  }
  const clusters = followed.clusters;

  const whip = buildWhipApp({
    config,
    clusters,
    client,
    metrics,
    logger,
    shuttingDown: () => shuttingDown,
  });
  const stopBackground = () => followed?.close();
  try {
    await whip.listen({ host: config.http.host, port: config.http.port });
  } catch (error) {
    stopBackground();
    await ops.close();
    throw new SignalingStartError(
      `cannot serve WHIP on ${formatHostPort(config.http.host, config.http.port)}: ${(error as Error).message}`,
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
  const availability = followed.availability();
  logger.info(
    {
      whip: formatHostPort(config.http.host, httpPort),
      ops: formatHostPort(config.ops.host, opsPort),
      auth: config.auth.tokens.length > 0 ? `${config.auth.tokens.length} token(s)` : 'off',
      relays: config.relays.length,
      clusters: clusters.map((cluster) => ({
        cluster: cluster.clusterId,
        region: cluster.region,
        generation: cluster.routingTable().generation,
      })),
      edgeRelays: config.edgeRelays.length,
      ...availability,
    },
    'signaling ready',
  );
  if (config.auth.tokens.length === 0)
    logger.warn('authentication is off: anyone who reaches the port can place calls');
  return { httpPort, opsPort, shutdown, stopped };
}
