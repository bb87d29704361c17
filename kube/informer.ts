// A list/watch cache of one kind of object that never gives up. A watch the server ends normally
// is resumed from the last resourceVersion seen (bookmarks keep it fresh). Any failure — a
// connection error, an ERROR event (410 Gone: the server no longer has that version), a watch that
// ends at once with nothing in it (an API server or CRD storage still starting) — relists after a
// capped exponential backoff and tells handlers what changed meanwhile (client-go's reflector does
// the same). The client-node informer stops on errors other than 410, so the loop is written here.
import type { Logger } from 'pino';
import { type BackoffPolicy, backoffDelayMs } from '../runtime/backoff.ts';
import { sleep } from '../runtime/sleep.ts';
import { isGone, type KubeClient, type WatchEvent } from './client.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

export interface InformerHandlers<T extends KubeObject> {
  onAdd?(object: T): void;
  onUpdate?(previous: T, object: T): void;
  onDelete?(object: T): void;
}

export interface InformerOptions {
  /** For logs and metrics: `pods`, `transceiverpools`… */
  readonly name: string;
  /** The collection's REST path (namespaced or across all namespaces). */
  readonly path: string;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  readonly backoff: BackoffPolicy;
  /** A watch asks the server to end it after this long (randomised up to twice, as client-go does). */
  readonly watchTimeoutSeconds: number;
  readonly pageSize?: number;
  /** A list request that takes longer is abandoned (and retried). Default: the client's 30 s. */
  readonly listTimeoutMs?: number;
  readonly logger: Logger;
  /** The list/watch failed and starts again with a relist; `error` says why. */
  readonly onRestart?: (cause: 'error' | 'expired', error: Error) => void;
  /** The server ended a watch normally; it is resumed from the last version seen. */
  readonly onWatchEnd?: () => void;
}

interface ListAnswer {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}

const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

export class Informer<T extends KubeObject = KubeObject> {
  readonly name: string;
  readonly #client: KubeClient;
  readonly #options: InformerOptions;
  readonly #store = new Map<string, T>();
  readonly #handlers: InformerHandlers<T>[] = [];
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #failures = 0;

  constructor(client: KubeClient, options: InformerOptions) {
    this.name = options.name;
    this.#client = client;
    this.#options = options;
  }

  addHandlers(handlers: InformerHandlers<T>): void {
    this.#handlers.push(handlers);
  }

  /** True once the first list has been stored (and from then on, through restarts). */
  get synced(): boolean {
    return this.#synced;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(objectKey(namespace, name));
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  get size(): number {
    return this.#store.size;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves once synced; rejects if `signal` aborts first. */
  whenSynced(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        this.#syncWaiters = this.#syncWaiters.filter((waiter) => waiter !== done);
        reject(signal?.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.#syncWaiters.push(done);
    });
  }

  async stop(): Promise<void> {
    this.#stop.abort(new Error(`informer ${this.name} stopped`));
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        // The failure count is reset only by a watch that delivers: a list that works followed by
        // a watch that does not must still back off.
        if (resourceVersion === undefined) resourceVersion = await this.#relist(signal);
        resourceVersion = await this.#watch(resourceVersion, signal);
        if (!signal.aborted) this.#options.onWatchEnd?.();
      } catch (error) {
        if (signal.aborted) break;
        const expired = isGone(error) || (error as { expired?: boolean }).expired === true;
        // Whatever the cache missed meanwhile, the next list brings it.
        resourceVersion = undefined;
        this.#failures++;
        this.#options.onRestart?.(expired ? 'expired' : 'error', error as Error);
        // A 410 on a healthy server relists at once; anything else waits first.
        const delay =
          expired && this.#failures === 1 ? 0 : backoffDelayMs(this.#failures, this.#options.backoff);
        this.#options.logger.warn(
          { informer: this.name, err: (error as Error).message, retryInMs: delay, failures: this.#failures },
          expired ? 'watch expired: relisting' : 'list/watch failed: retrying',
        );
        await sleep(delay, signal);
      }
    }
  }

  /** Lists every page, replaces the store, tells handlers the difference; returns the list's version. */
  async #relist(signal: AbortSignal): Promise<string> {
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.#client.get<ListAnswer>(this.#options.path, {
        query: {
          labelSelector: this.#options.labelSelector,
          fieldSelector: this.#options.fieldSelector,
          limit: this.#options.pageSize ?? 500,
          continue: continueToken,
        },
        signal,
        ...(this.#options.listTimeoutMs === undefined ? {} : { timeoutMs: this.#options.listTimeoutMs }),
      });
      for (const item of page.items ?? []) {
        if (item?.metadata?.name)
          fresh.set(objectKey(item.metadata.namespace, item.metadata.name), item as T);
      }
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (continueToken !== undefined);

    const previous = new Map(this.#store);
    this.#store.clear();
    for (const [key, object] of fresh) this.#store.set(key, object);
    for (const [key, object] of fresh) {
      const before = previous.get(key);
      if (before === undefined) this.#emit((h) => h.onAdd?.(object));
      else if (before.metadata.resourceVersion !== object.metadata.resourceVersion)
        this.#emit((h) => h.onUpdate?.(before, object));
    }
    for (const [key, object] of previous) if (!fresh.has(key)) this.#emit((h) => h.onDelete?.(object));
    this.#markSynced();
    return resourceVersion;
  }

  /** One watch from `resourceVersion` until the server ends it; returns the last version seen. */
  async #watch(resourceVersion: string, signal: AbortSignal): Promise<string> {
    const base = this.#options.watchTimeoutSeconds;
    const timeoutSeconds = Math.round(base * (1 + Math.random()));
    this.#options.logger.debug({ informer: this.name, resourceVersion, timeoutSeconds }, 'watching');
    let version = resourceVersion;
    let connected = false;
    const started = Date.now();
    await this.#client.watch(
      this.#options.path,
      {
        labelSelector: this.#options.labelSelector,
        fieldSelector: this.#options.fieldSelector,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      },
      (event) => {
        if (!connected) {
          connected = true;
          this.#failures = 0;
        }
        version = this.#apply(event) ?? version;
      },
      { signal, idleTimeoutMs: (timeoutSeconds + 30) * 1000 },
    );
    if (!connected && Date.now() - started < 1_000 && !signal.aborted) {
      throw new Error(`watch ${this.name}: ended at once with no event (is the API server starting?)`);
    }
    return version;
  }

  #apply(event: WatchEvent): string | undefined {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string };
      const error = new Error(`watch ${this.name}: ${status.code ?? '?'} ${status.message ?? ''}`);
      if (status.code === 410) Object.assign(error, { expired: true });
      throw error;
    }
    const object = event.object as unknown as T;
    const meta = object.metadata;
    if (!meta || typeof meta.name !== 'string') return undefined;
    this.#options.logger.trace(
      { informer: this.name, type: event.type, name: meta.name, resourceVersion: meta.resourceVersion },
      'watch event',
    );
    if (event.type === 'BOOKMARK') return meta.resourceVersion;
    const key = objectKey(meta.namespace, meta.name);
    const before = this.#store.get(key);
    if (event.type === 'DELETED') {
      this.#store.delete(key);
      this.#emit((h) => h.onDelete?.(object));
    } else {
      this.#store.set(key, object);
      if (before === undefined) this.#emit((h) => h.onAdd?.(object));
      else this.#emit((h) => h.onUpdate?.(before, object));
    }
    return meta.resourceVersion;
  }

  #emit(call: (handlers: InformerHandlers<T>) => void): void {
    for (const handlers of this.#handlers) {
      try {
        call(handlers);
      } catch (error) {
        this.#options.logger.error({ informer: this.name, err: error }, 'informer handler failed');
      }
    }
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
