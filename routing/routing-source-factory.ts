// The RoutingSource a `routingTable` configuration names. The Kubernetes client is imported only
// when a ConfigMap is named: it costs about half a second of start-up that file users need not pay.
import type { Logger } from 'pino';
import type { WatchRestartReason } from './kubernetes-routing-source.ts';
import { FileRoutingSource, type RoutingSource } from './routing-source.ts';
import type { RoutingTableSourceConfig } from './routing-table-config.ts';

export interface RoutingSourceHooks {
  readonly logger: Logger;
  /** A watch of the Kubernetes API restarted (for a metric). */
  readonly onWatchRestart?: (reason: WatchRestartReason) => void;
}

export async function createRoutingSource(
  config: RoutingTableSourceConfig,
  hooks: RoutingSourceHooks,
): Promise<RoutingSource> {
  if (config.file !== undefined) return new FileRoutingSource(config.file);
  const { KubernetesRoutingSource } = await import('./kubernetes-routing-source.ts');
  return new KubernetesRoutingSource({
    name: config.configMap.name,
    namespace: config.configMap.namespace,
    logger: hooks.logger,
    ...(hooks.onWatchRestart === undefined ? {} : { onWatchRestart: hooks.onWatchRestart }),
  });
}
