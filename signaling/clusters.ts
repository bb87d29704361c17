// Several clusters for one signaling (docs/global-tier.md): each cluster's routing table followed
// from its own source, each cluster's transceivers polled by its own status cache. What the WHIP
// routes see of them is a PlacementCluster each.
import type { Logger } from 'pino';
import { formatTransportAddress } from '../protocol/address.ts';
import type { RoutingTable } from '../protocol/routing-table.ts';
import type { RoutingSource } from '../routing/routing-source.ts';
import { createRoutingSource } from '../routing/routing-source-factory.ts';
import type { SignalingConfig } from './config.ts';
import type { SignalingMetrics } from './metrics.ts';
import type { PlacementCluster } from './placement.ts';
import { type Availability, StatusCache } from './status-cache.ts';
import { TransceiverClient } from './transceiver-client.ts';

/**
 * A cluster to follow. Without `clusterId` (the one-cluster configuration: `routingTable` and
 * `relays`), the cluster is whichever the routing table names.
 */
export type ClusterConfig = Omit<NonNullable<SignalingConfig['clusters']>[number], 'clusterId'> & {
  readonly clusterId?: number | undefined;
};

export interface FollowedClusters {
  readonly clusters: readonly PlacementCluster[];
  /** Sum over the clusters' status caches, for the transceivers gauge. */
  availability(): Record<Availability, number>;
  close(): void;
}

export interface FollowOptions {
  /**
   * The client for a cluster's transceivers; by default one with the timeouts of `transceivers`
   * and the cluster's API token (apiTokenFor).
   */
  readonly clientFor?: (cluster: ClusterConfig) => TransceiverClient;
  readonly transceivers: SignalingConfig['transceivers'];
  readonly metrics: SignalingMetrics;
  readonly logger: Logger;
  /** Tests may hand in sources; by default each cluster's `routingTable` names its own. */
  readonly sourceFor?: (cluster: ClusterConfig) => Promise<RoutingSource>;
}

/**
 * The token sent to a cluster's transceivers: the first of its own `apiTokens`, else the first of
 * `transceivers.apiTokens` (the config schema requires one or the other).
 */
export function apiTokenFor(
  cluster: Pick<ClusterConfig, 'apiTokens'>,
  shared: readonly string[],
): string | undefined {
  return cluster.apiTokens?.[0] ?? shared[0];
}

/**
 * Starts following every cluster: resolves once each has a first valid routing table for the
 * cluster ID configured (a table for another cluster is refused, as the relay refuses it) and one
 * status round is done. Rejects, with everything already started closed, if a cluster has none.
 */
export async function followClusters(
  configs: readonly ClusterConfig[],
  options: FollowOptions,
): Promise<FollowedClusters> {
  const { metrics, logger } = options;
  // Several clusters get per-cluster labels; one cluster keeps the one-cluster metrics.
  const several = configs.length > 1 || configs.some((config) => config.clusterId !== undefined);
  const started: Array<{ source: RoutingSource; cache: StatusCache }> = [];
  const clusters: PlacementCluster[] = [];
  const close = () => {
    for (const { source, cache } of started) {
      cache.close();
      source.close();
    }
  };
  try {
    for (const config of configs) {
      const log = config.clusterId === undefined ? logger : logger.child({ cluster: config.clusterId });
      const label = (id: number) =>
        config.clusterId === undefined ? String(id) : `${config.clusterId}-${id}`;
      const client =
        options.clientFor?.(config) ??
        new TransceiverClient({
          requestTimeoutMs: options.transceivers.requestTimeoutMs,
          statusTimeoutMs: options.transceivers.statusTimeoutMs,
          token: apiTokenFor(config, options.transceivers.apiTokens),
        });
      const cache = new StatusCache({
        client,
        intervalMs: options.transceivers.statusIntervalMs,
        staleMs: options.transceivers.statusStaleMs,
        onPollError(id, error, first) {
          metrics.statusPollErrors.inc({ transceiver: label(id) });
          if (first)
            log.warn({ transceiver: id, error }, 'transceiver status unavailable; no sessions go there');
        },
        onRecovered(id) {
          log.info({ transceiver: id }, 'transceiver status available again');
        },
      });
      const source =
        (await options.sourceFor?.(config)) ??
        (await createRoutingSource(config.routingTable, {
          logger: log,
          onWatchRestart: (reason) => metrics.routingWatchRestarts.inc({ reason }),
        }));
      started.push({ source, cache });
      const mismatch = (table: RoutingTable) =>
        config.clusterId === undefined || table.clusterId === config.clusterId
          ? undefined
          : `the routing table is for cluster ${table.clusterId}, configured as cluster ${config.clusterId}`;
      const noteGeneration = (next: RoutingTable) => {
        if (several)
          metrics.clusterRoutingTableGeneration.set({ cluster: String(next.clusterId) }, next.generation);
        else metrics.routingTableGeneration.set(next.generation);
      };
      // Set from the first table below; updates replace it.
      let table: RoutingTable | undefined;
      const first = await source.start({
        onTable(next) {
          const problem = mismatch(next);
          if (problem !== undefined) {
            metrics.routingTableErrors.inc();
            log.error({ problem }, 'routing table rejected; keeping the previous one');
            return;
          }
          table = next;
          noteGeneration(next);
          void cache.setTable(next);
          log.info(
            { generation: next.generation, transceivers: next.transceivers.length },
            'routing table loaded',
          );
        },
        onInvalid(error) {
          metrics.routingTableErrors.inc();
          log.error({ error }, 'routing table rejected; keeping the previous one');
        },
      });
      const problem = mismatch(first.table);
      if (problem !== undefined) throw new Error(`cluster ${config.clusterId}: ${problem}`);
      table = first.table;
      const current = () => table ?? first.table;
      noteGeneration(table);
      if (!table.transceivers.some((entry) => entry.api !== undefined)) {
        log.warn('no transceiver in the routing table has an api URL: no offer is placed in this cluster');
      }
      void cache.setTable(table);
      const fixedId = config.clusterId;
      clusters.push({
        get clusterId() {
          return fixedId ?? current().clusterId;
        },
        region: config.region,
        relays: config.relays.map(formatTransportAddress),
        tcpRelays: config.tcpRelays.map(formatTransportAddress),
        routingTable: current,
        statuses: cache,
        client,
      });
    }
    // One status round everywhere (bounded by the status timeout) before taking offers.
    await Promise.all(started.map(({ cache }) => cache.start()));
  } catch (error) {
    close();
    throw error;
  }
  return {
    clusters,
    availability() {
      const sum: Record<Availability, number> = { available: 0, full: 0, draining: 0, unavailable: 0 };
      for (const { cache } of started) {
        for (const [key, value] of Object.entries(cache.availability()) as Array<[Availability, number]>)
          sum[key] += value;
      }
      return sum;
    },
    close,
  };
}
