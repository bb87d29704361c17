// The routing table as the operator publishes it: one ConfigMap (data key `routing.json`) read
// through the Kubernetes API. List it (fieldSelector metadata.name=<name>), then watch from the
// list's resourceVersion; on any end of the watch start again (at once after a normal close, with
// capped exponential backoff and jitter after an error), relisting when the server says 410 Gone.
// client-node's informer stops for good on errors other than 410, so this loop is written here.
// While the API server is unreachable, the ConfigMap is deleted or holds an invalid table, the last
// good table stays in force. Events are handled as they arrive, one at a time: nothing queues.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ApiException,
  CoreV1Api,
  KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { type BackoffPolicy, backoffDelayMs, DEFAULT_BACKOFF } from '../runtime/backoff.ts';
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
   * Asks the server to end each watch after this long. Below the 30 s of silence after which
   * client-node's Watch aborts a connection, so a quiet watch ends cleanly (with a bookmark that
   * carries a fresh resourceVersion) instead of by timeout. Default 25.
   */
  readonly watchTimeoutSeconds?: number;
  /** Called whenever the watch is started again (for a metric). */
  readonly onWatchRestart?: (reason: WatchRestartReason) => void;
  /** [0, 1) source for the backoff jitter. */
  readonly random?: () => number;
}

/** A watch that ran at least this long and then closed normally is restarted at once. */
const HEALTHY_WATCH_MS = 1_000;

type WatchEnd = { readonly reason: WatchRestartReason; readonly error?: Error };

/** One line for an error from client-node: HTTP status and the API server's message, or the cause. */
export function describeKubernetesError(error: unknown): string {
  const api = error as Partial<ApiException<unknown>> & { statusCode?: number; cause?: unknown };
  const status = typeof api.code === 'number' ? api.code : api.statusCode;
  if (typeof status === 'number') {
    let message: string | undefined;
    const body = api.body;
    try {
      const parsed = typeof body === 'string' ? JSON.parse(body) : body;
      if (parsed && typeof parsed === 'object' && typeof parsed.message === 'string')
        message = parsed.message;
    } catch {
      // a body that is not a Status object: the status code says enough
    }
    const forbidden = status === 403 ? ' (the ServiceAccount needs get/list/watch on configmaps)' : '';
    return `HTTP ${status}${message === undefined ? '' : `: ${message}`}${forbidden}`;
  }
  const cause = api.cause as { code?: string; message?: string } | undefined;
  const base = error instanceof Error ? error.message : String(error);
  return cause?.message !== undefined && cause.message !== base ? `${base}: ${cause.message}` : base;
}

export class KubernetesRoutingSource implements RoutingSource {
  readonly #options: KubernetesRoutingSourceOptions;
  readonly #tracker: ConfigMapTableTracker;
  readonly #closing = new AbortController();
  #kubeConfig: KubeConfig | undefined;
  #listener: RoutingSourceListener | undefined;
  #first: ((value: { table: RoutingTable; document: unknown }) => void) | undefined;
  /** Rejects a pending start(); set while start() waits. */
  #failStart: ((error: Error) => void) | undefined;
  /** What start() is still waiting for, for its timeout error. */
  #waitingFor = 'no answer from the API server yet';
  #stopWatch: (() => void) | undefined;
  #loop: Promise<void> | undefined;
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
      } catch (error) {
        this.#failStart!(
          new Error(`${this.origin}: no Kubernetes client configuration: ${(error as Error).message}`),
        );
        return;
      }
      this.#loop = this.#run(this.#kubeConfig);
    });
  }

  /** Stops the watch and every retry (a pending start() rejects). Idempotent. */
  close(): void {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#stopWatch?.();
    this.#failStart?.(new Error(`${this.origin}: closed before a valid table arrived`));
  }

  /** For tests: resolves when the loop has ended after close(). */
  async closed(): Promise<void> {
    await this.#loop;
  }

  #server(): string {
    return this.#kubeConfig?.getCurrentCluster()?.server ?? '(none configured)';
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

  #observe(configMap: V1ConfigMap | undefined): void {
    if (this.#closing.signal.aborted) return;
    this.#handle(
      configMap === undefined ? this.#tracker.observeAbsent() : this.#tracker.observe(configMap.data),
    );
  }

  async #run(kubeConfig: KubeConfig): Promise<void> {
    const api = kubeConfig.makeApiClient(CoreV1Api);
    const watch = new Watch(kubeConfig);
    const logger = this.#options.logger;
    const backoff = this.#options.backoff ?? DEFAULT_BACKOFF;
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!this.#closing.signal.aborted) {
      let end: WatchEnd;
      let watchedMs = 0;
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#list(api);
          if (failures > 0) logger?.info({ configMap: this.origin, failures }, 'API server reachable again');
          failures = 0;
        }
        const startedAt = performance.now();
        end = await this.#watch(watch, resourceVersion, (next) => {
          resourceVersion = next;
        });
        watchedMs = performance.now() - startedAt;
      } catch (error) {
        end = { reason: 'error', error: error as Error };
      }
      if (this.#closing.signal.aborted) break;
      if (end.reason === 'expired') resourceVersion = undefined;
      // A watch that got going and then closed or expired normally is restarted at once; errors
      // (and watches that end as soon as they start) back off.
      const healthy = end.reason !== 'error' && watchedMs >= HEALTHY_WATCH_MS;
      if (healthy) failures = 0;
      else failures++;
      const delayMs = healthy ? 0 : backoffDelayMs(failures, backoff, this.#options.random);
      this.#restarts++;
      this.#options.onWatchRestart?.(end.reason);
      if (end.error !== undefined) {
        const problem = describeKubernetesError(end.error);
        if (this.#first !== undefined) this.#waitingFor = `API server ${this.#server()}: ${problem}`;
        logger?.warn(
          { configMap: this.origin, error: problem, failures, retryInMs: delayMs },
          this.#tracker.current === undefined
            ? 'routing table watch failed; retrying'
            : 'routing table watch failed; keeping the last table and retrying',
        );
      } else {
        logger?.debug(
          { configMap: this.origin, reason: end.reason, retryInMs: delayMs },
          'routing table watch restarting',
        );
      }
      if (delayMs > 0) {
        try {
          await sleep(delayMs, undefined, { signal: this.#closing.signal });
        } catch {
          break; // closed while waiting
        }
      }
    }
  }

  /** Lists the ConfigMap by name; feeds what it finds (or its absence); returns the list's resourceVersion. */
  async #list(api: CoreV1Api): Promise<string> {
    const signal = AbortSignal.any([
      this.#closing.signal,
      AbortSignal.timeout(this.#options.requestTimeoutMs ?? 10_000),
    ]);
    const list = await api.listNamespacedConfigMap(
      { namespace: this.#options.namespace, fieldSelector: `metadata.name=${this.#options.name}` },
      abortWith(signal),
    );
    this.#observe(list.items.find((item) => item.metadata?.name === this.#options.name));
    const resourceVersion = list.metadata?.resourceVersion;
    if (resourceVersion === undefined || resourceVersion === '') {
      throw new Error('the API server listed configmaps without a resourceVersion');
    }
    return resourceVersion;
  }

  /** Watches from `resourceVersion` until the watch ends; resolves (never rejects) with why. */
  #watch(watch: Watch, resourceVersion: string, onVersion: (next: string) => void): Promise<WatchEnd> {
    const { namespace, name } = this.#options;
    return new Promise<WatchEnd>((resolve) => {
      let controller: AbortController | undefined;
      let ended = false;
      const finish = (end: WatchEnd) => {
        if (ended) return;
        ended = true;
        this.#stopWatch = undefined;
        controller?.abort();
        resolve(end);
      };
      this.#stopWatch = () => finish({ reason: 'closed' });
      const onEvent = (phase: string, object: unknown) => {
        if (ended) return;
        const item = object as V1ConfigMap & { code?: number; message?: string };
        const version = item?.metadata?.resourceVersion;
        switch (phase) {
          case 'ADDED':
          case 'MODIFIED':
            this.#observe(item);
            break;
          case 'DELETED':
            this.#observe(undefined);
            break;
          case 'BOOKMARK':
            break;
          case 'ERROR':
            // A Status object: 410 Gone means our resourceVersion is too old to watch from.
            finish(
              item?.code === 410
                ? { reason: 'expired' }
                : {
                    reason: 'error',
                    error: new Error(`watch error: ${item?.message ?? JSON.stringify(object)}`),
                  },
            );
            return;
          default:
            return;
        }
        if (version !== undefined) onVersion(version);
      };
      const onDone = (error: unknown) => {
        if (error === null || error === undefined) finish({ reason: 'closed' });
        else if ((error as { statusCode?: number }).statusCode === 410) finish({ reason: 'expired' });
        else finish({ reason: 'error', error: error instanceof Error ? error : new Error(String(error)) });
      };
      watch
        .watch(
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
          {
            fieldSelector: `metadata.name=${name}`,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.#options.watchTimeoutSeconds ?? 25,
          },
          onEvent,
          onDone,
        )
        .then(
          (started) => {
            controller = started;
            if (ended) started.abort();
          },
          (error: unknown) => onDone(error ?? new Error('watch could not start')),
        );
    });
  }
}

function loadDefaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}

/** Request options with a middleware that lets `signal` abort the request (timeout or close). */
function abortWith(signal: AbortSignal): Parameters<CoreV1Api['listNamespacedConfigMap']>[1] {
  const middleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}
