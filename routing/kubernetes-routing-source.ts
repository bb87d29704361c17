// The routing table as the operator publishes it: one ConfigMap (data key `routing.json`) read
// through the Kubernetes API with the project's one client and informer (kube/): list it
// (fieldSelector metadata.name=<name>), then watch from the list's resourceVersion, resuming a watch
// the server ends and relisting after an error or 410 Gone with capped exponential backoff. While
// the API server is unreachable, the ConfigMap is deleted or holds an invalid table, the last good
// table stays in force. Events are handled as they arrive, one at a time: nothing queues.

import { KubeConfig } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { KubeApiError, KubeClient } from '../kube/client.ts';
import { Informer, type KubeObject } from '../kube/informer.ts';
import { BUILT_IN_RESOURCES, resourcePath } from '../kube/resources.ts';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { type BackoffPolicy, DEFAULT_BACKOFF } from '../runtime/backoff.ts';
import { type ConfigMapOutcome, ConfigMapTableTracker } from './config-map-table.ts';
import type { RoutingSource, RoutingSourceListener } from './routing-source.ts';

/** Why the watch was started again: closed by the server, 410 Gone (relist), or an error. */
export type WatchRestartReason = 'closed' | 'expired' | 'error';

export interface KubernetesRoutingSourceOptions {
  readonly name: string;
  readonly namespace: string;
  /** Default: `new KubeConfig().loadFromDefault()` (KUBECONFIG, ~/.kube/config, else in-cluster). */
  readonly kubeConfig?: KubeConfig;
  readonly logger?: Logger;
  /** start() rejects if no valid table arrived within this long. Default 60 s. */
  readonly startTimeoutMs?: number;
  /** Between failed attempts (list or watch). Default 0.5 s doubling to 30 s. */
  readonly backoff?: BackoffPolicy;
  /** A list request that takes longer is abandoned (and retried). Default 10 s. */
  readonly requestTimeoutMs?: number;
  /**
   * Asks the server to end each watch after this long (randomised up to twice as long, so that
   * replicas do not all come back at once); the watch then resumes from the last version seen.
   * Default 25.
   */
  readonly watchTimeoutSeconds?: number;
  /** Called whenever the watch is started again (for a metric). */
  readonly onWatchRestart?: (reason: WatchRestartReason) => void;
}

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

/** One line for an error from the Kubernetes client: HTTP status and the API server's message, or the cause. */
export function describeKubernetesError(error: unknown): string {
  if (error instanceof KubeApiError) {
    const message = error.statusMessage === undefined ? '' : `: ${error.statusMessage}`;
    const forbidden = error.status === 403 ? ' (the ServiceAccount needs get/list/watch on configmaps)' : '';
    return `HTTP ${error.status}${message}${forbidden}`;
  }
  const cause = (error as { cause?: { message?: string } } | undefined)?.cause;
  const base = error instanceof Error ? error.message : String(error);
  return cause?.message !== undefined && cause.message !== base ? `${base}: ${cause.message}` : base;
}

export class KubernetesRoutingSource implements RoutingSource {
  readonly #options: KubernetesRoutingSourceOptions;
  readonly #tracker: ConfigMapTableTracker;
  readonly #closing = new AbortController();
  #kubeConfig: KubeConfig | undefined;
  #client: KubeClient | undefined;
  #informer: Informer<ConfigMapObject> | undefined;
  #listener: RoutingSourceListener | undefined;
  #first: ((value: { table: RoutingTable; document: unknown }) => void) | undefined;
  /** Rejects a pending start(); set while start() waits. */
  #failStart: ((error: Error) => void) | undefined;
  /** What start() is still waiting for, for its timeout error. */
  #waitingFor = 'no answer from the API server yet';
  #restarts = 0;

  constructor(options: KubernetesRoutingSourceOptions) {
    this.#options = options;
    this.#tracker = new ConfigMapTableTracker(`${options.namespace}/${options.name}`);
  }

  get origin(): string {
    return this.#tracker.origin;
  }

  /** How many times the watch was started again since start(). */
  get restarts(): number {
    return this.#restarts;
  }

  /** Resolves with the first valid table; rejects when none arrives within startTimeoutMs. */
  start(listener: RoutingSourceListener): Promise<{ table: RoutingTable; document: unknown }> {
    if (this.#listener !== undefined) return Promise.reject(new Error(`${this.origin}: already started`));
    this.#listener = listener;
    const timeoutMs = this.#options.startTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#failStart?.(
          new Error(
            `no valid ${this.origin} within ${timeoutMs / 1000} s (namespace ${this.#options.namespace}, ` +
              `API server ${this.#server()}): ${this.#waitingFor}`,
          ),
        );
      }, timeoutMs);
      this.#first = (value) => {
        clearTimeout(timer);
        this.#first = undefined;
        this.#failStart = undefined;
        resolve(value);
      };
      this.#failStart = (error) => {
        clearTimeout(timer);
        this.#first = undefined;
        this.#failStart = undefined;
        this.close();
        reject(error);
      };
      try {
        this.#kubeConfig = this.#options.kubeConfig ?? loadDefaultKubeConfig();
        this.#client = new KubeClient(this.#kubeConfig);
      } catch (error) {
        this.#failStart!(
          new Error(`${this.origin}: no Kubernetes client configuration: ${(error as Error).message}`),
        );
        return;
      }
      this.#informer = this.#watch(this.#client);
      this.#informer.start();
    });
  }

  /** Stops the watch and every retry (a pending start() rejects). Idempotent. */
  close(): void {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    void this.#informer?.stop().finally(() => this.#client?.close());
    this.#failStart?.(new Error(`${this.origin}: closed before a valid table arrived`));
  }

  /** For tests: resolves when the watch has ended after close(). */
  async closed(): Promise<void> {
    await this.#informer?.stop();
  }

  #server(): string {
    return this.#kubeConfig?.getCurrentCluster()?.server ?? '(none configured)';
  }

  /** The informer of the one ConfigMap, feeding what it sees to the tracker. */
  #watch(client: KubeClient): Informer<ConfigMapObject> {
    const { name, namespace } = this.#options;
    const informer = new Informer<ConfigMapObject>(client, {
      name: this.origin,
      path: resourcePath(BUILT_IN_RESOURCES.configMap, namespace),
      fieldSelector: `metadata.name=${name}`,
      backoff: this.#options.backoff ?? DEFAULT_BACKOFF,
      watchTimeoutSeconds: this.#options.watchTimeoutSeconds ?? 25,
      listTimeoutMs: this.#options.requestTimeoutMs ?? 10_000,
      logger: this.#options.logger ?? pino({ level: 'silent' }),
      onRestart: (reason, error) => {
        if (this.#first !== undefined) {
          this.#waitingFor = `API server ${this.#server()}: ${describeKubernetesError(error)}`;
        }
        this.#restarted(reason);
      },
      onWatchEnd: () => this.#restarted('closed'),
    });
    informer.addHandlers({
      onAdd: (configMap) => this.#observe(configMap),
      onUpdate: (_previous, configMap) => this.#observe(configMap),
      onDelete: () => this.#observe(undefined),
    });
    // A first list without the ConfigMap tells no handler: say that it does not exist yet.
    informer.whenSynced(this.#closing.signal).then(
      () => {
        if (informer.get(namespace, name) === undefined) this.#observe(undefined);
      },
      () => {}, // closed before the first list
    );
    return informer;
  }

  #restarted(reason: WatchRestartReason): void {
    if (this.#closing.signal.aborted) return;
    this.#restarts++;
    this.#options.onWatchRestart?.(reason);
  }

  #observe(configMap: ConfigMapObject | undefined): void {
    if (this.#closing.signal.aborted) return;
    this.#handle(
      configMap === undefined ? this.#tracker.observeAbsent() : this.#tracker.observe(configMap.data),
    );
  }

  #handle(outcome: ConfigMapOutcome): void {
    const logger = this.#options.logger;
    switch (outcome.type) {
      case 'table':
        if (this.#first !== undefined) {
          this.#first({ table: outcome.table, document: outcome.document });
        } else {
          this.#listener?.onTable(outcome.table, outcome.document);
        }
        return;
      case 'invalid':
        this.#waitingFor = outcome.error;
        this.#listener?.onInvalid(outcome.error);
        return;
      case 'missing':
        this.#waitingFor = outcome.error;
        if (outcome.hadTable) this.#listener?.onInvalid(outcome.error);
        else
          logger?.info({ configMap: this.origin }, 'waiting for the routing table ConfigMap to be created');
        return;
      case 'unchanged':
        return;
    }
  }
}

function loadDefaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}
