// The operator process: caches of everything it reconciles, leader election, the controller, the
// HTTP face. Shutdown: stop reconciling (in-flight writes are aborted), release the Lease so a
// standby takes over at once, stop the watches, close HTTP.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { RunningService } from '../config/service-main.ts';
import { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import { Informer } from '../kube/informer.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import { type Resource, resourcePath } from '../kube/resources.ts';
import { formatHostPort } from '../protocol/host-port.ts';
import {
  COMPONENT,
  LABEL_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  MANAGED_BY_VALUE,
  NAME_VALUE,
} from './api/v1alpha1.ts';
import type { CrashPoint, OperatorConfig } from './config.ts';
import { Controller } from './controller.ts';
import { createOperatorHttp } from './http.ts';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.ts';
import type { Caches } from './reconcile/context.ts';
import { RESOURCES } from './resources.ts';

export class OperatorStartError extends Error {
  override name = 'OperatorStartError';
}

export interface OperatorOptions {
  /** Default: `new KubeConfig().loadFromDefault()` (KUBECONFIG, else in-cluster). */
  readonly kubeConfig?: KubeConfig;
  /** What a configured crash point does; default: SIGKILL this process (tests only). */
  readonly onCrash?: (point: CrashPoint) => void;
}

export interface RunningOperator extends RunningService {
  readonly httpPort: number;
  readonly identity: string;
  readonly metrics: OperatorMetrics;
  /** True while this replica reconciles. */
  leading(): boolean;
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export async function startOperator(
  config: OperatorConfig,
  logger: Logger,
  options: OperatorOptions = {},
): Promise<RunningOperator> {
  let kubeConfig = options.kubeConfig;
  if (!kubeConfig) {
    kubeConfig = new KubeConfig();
    try {
      kubeConfig.loadFromDefault();
    } catch (error) {
      throw new OperatorStartError(`cannot load a kubeconfig: ${(error as Error).message}`);
    }
  }
  let client: KubeClient;
  try {
    client = new KubeClient(kubeConfig);
  } catch (error) {
    throw new OperatorStartError((error as Error).message);
  }
  const identity = config.podName ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const metrics = createOperatorMetrics();

  const namespace = config.watchNamespace === '' ? undefined : config.watchNamespace;
  const owned = `${LABEL_NAME}=${NAME_VALUE},${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;
  const informer = (resource: Resource, labelSelector?: string) =>
    new Informer(client, {
      name: resource.plural,
      path: resourcePath(resource, namespace),
      labelSelector,
      backoff: { initialMs: config.watch.backoffInitialMs, maxMs: config.watch.backoffMaxMs },
      watchTimeoutSeconds: config.watch.timeoutSeconds,
      logger,
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: resource.plural, cause }),
    });
  const caches: Caches = {
    clusters: informer(RESOURCES.cluster),
    pools: informer(RESOURCES.pool),
    // Transceiver pods (one per ID) and relay pods (their IPs are the routing table's relaySources).
    pods: informer(
      RESOURCES.pod,
      `${owned},${LABEL_COMPONENT} in (${COMPONENT.transceiver},${COMPONENT.relay})`,
    ),
    configMaps: informer(RESOURCES.configMap, owned),
    deployments: informer(RESOURCES.deployment, owned),
    services: informer(RESOURCES.service, owned),
  };
  const recorder = new EventRecorder(client, {
    controller: 'voice-edge.io/operator',
    instance: identity,
    logger,
    onDropped: (why) => metrics.eventsDropped.inc({ why }),
    onRecorded: (type, reason) => metrics.events.inc({ type, reason }),
  });
  const crash =
    options.onCrash ??
    ((point: CrashPoint) => {
      logger.fatal({ point }, 'crashing on purpose (faults.crashAt)');
      process.kill(process.pid, 'SIGKILL');
    });
  const controller = new Controller({
    client,
    caches,
    recorder,
    metrics,
    config,
    logger,
    operator: {
      namespace: operatorNamespaceOf(config),
      podLabels: config.networkPolicy.operatorPodLabels,
    },
    crash: (point) => {
      if (config.faults.crashAt === point) crash(point);
    },
  });

  let elector: LeaderElector | undefined;
  const standalone = new AbortController();
  const http = createOperatorHttp({
    registry: metrics.registry,
    notReady: () => {
      const unsynced = Object.values(caches).filter((cache) => !cache.synced);
      if (unsynced.length > 0) return `caches not synced: ${unsynced.map((cache) => cache.name).join(', ')}`;
      return undefined;
    },
  });
  let httpPort: number;
  try {
    await http.listen({ host: config.http.host, port: config.http.port });
    httpPort = (http.server.address() as { port: number }).port;
  } catch (error) {
    client.close();
    const hint = (error as { code?: string }).code === 'EADDRINUSE' ? ' (is another process using it?)' : '';
    throw new OperatorStartError(
      `cannot serve HTTP on ${formatHostPort(config.http.host, config.http.port)}: ${(error as Error).message}${hint}`,
    );
  }

  for (const cache of Object.values(caches)) cache.start();
  if (config.leaderElection.enabled) {
    const leaseNamespace = leaseNamespaceOf(config);
    elector = new LeaderElector(client, {
      namespace: leaseNamespace,
      name: config.leaderElection.leaseName,
      identity,
      leaseDurationSeconds: config.leaderElection.leaseDurationSeconds,
      renewDeadlineMs: config.leaderElection.renewDeadlineMs,
      retryPeriodMs: config.leaderElection.retryPeriodMs,
      logger,
      onStartedLeading: (lost) => void controller.lead(lost),
      onStoppedLeading: () => undefined,
    });
    elector.start();
    logger.info(
      { identity, lease: `${leaseNamespace}/${config.leaderElection.leaseName}`, httpPort },
      'operator started: waiting for leadership',
    );
  } else {
    void controller.lead(standalone.signal);
    logger.info({ identity, httpPort }, 'operator started without leader election');
  }

  let resolveStopped: (cause: unknown) => void = () => {};
  const stopped = new Promise<unknown>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      standalone.abort(new Error('shutting down'));
      // Stop leading first (aborts in-flight writes), then give the Lease up.
      await elector?.stop();
      await controller.stop();
      await Promise.all(Object.values(caches).map((cache) => cache.stop()));
      await recorder.flush();
      await http.close();
      client.close();
      logger.info('operator stopped');
      resolveStopped(undefined);
    })();
    return stopping;
  };
  return {
    shutdown,
    stopped,
    httpPort,
    identity,
    metrics,
    leading: () => controller.leading,
  };
}

function leaseNamespaceOf(config: OperatorConfig): string {
  const configured = config.leaderElection.namespace;
  if (configured) return configured;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/** The operator's namespace for the NetworkPolicies: configured, else its pod's, else unknown. */
function operatorNamespaceOf(config: OperatorConfig): string | undefined {
  const configured = config.networkPolicy.operatorNamespace;
  if (configured) return configured;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
