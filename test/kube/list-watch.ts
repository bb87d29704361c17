// List, then watch from the list's resourceVersion, keeping a store of the objects: what client-go's
// reflector does, reduced to what the test kubelet needs. The watch is re-opened whenever the server
// ends it; after an error it is re-opened with capped exponential backoff; 410 Gone (the version is too
// old) means list again. Handlers see every change exactly once, including deletions a relist reveals.
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, type KubeClient, type Query } from './kube-client.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

interface List<T> {
  metadata?: { resourceVersion?: string };
  items: T[];
}

export interface ListWatchHandlers<T> {
  upsert(object: T): void;
  remove(object: T): void;
  /** A failed list or watch (before the retry). */
  error?(error: unknown): void;
}

export class ListWatch<T extends KubeObject> {
  readonly #client: KubeClient;
  readonly #path: string;
  readonly #query: Query;
  readonly #handlers: ListWatchHandlers<T>;
  readonly #store = new Map<string, T>();
  readonly #abort = new AbortController();
  #synced: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #lists = 0;

  constructor(client: KubeClient, path: string, query: Query, handlers: ListWatchHandlers<T>) {
    this.#client = client;
    this.#path = path;
    this.#query = query;
    this.#handlers = handlers;
  }

  /** Resolves after the first successful list. */
  start(): Promise<void> {
    if (this.#synced) return this.#synced;
    let markSynced: () => void = () => {};
    this.#synced = new Promise<void>((resolve) => {
      markSynced = resolve;
    });
    this.#loop = this.#run(markSynced);
    return this.#synced;
  }

  get objects(): T[] {
    return [...this.#store.values()];
  }

  /** How many times it listed again after a 410 (diagnostics; the API server restarting causes one). */
  get relists(): number {
    return Math.max(0, this.#lists - 1);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(markSynced: () => void): Promise<void> {
    const signal = this.#abort.signal;
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          const list = await this.#client.get<List<T>>(this.#path, this.#query, signal);
          this.#lists++;
          this.#replace(list.items);
          resourceVersion = list.metadata?.resourceVersion ?? '0';
          markSynced();
        }
        await this.#client.watch<T>(
          this.#path,
          {
            ...this.#query,
            resourceVersion,
            allowWatchBookmarks: true,
            // The server ends the watch after this; we simply open the next one.
            timeoutSeconds: 60 + Math.floor(Math.random() * 60),
          },
          (event) => {
            const version = event.object.metadata?.resourceVersion;
            if (version) resourceVersion = version;
            if (event.type === 'ADDED' || event.type === 'MODIFIED') this.#upsert(event.object);
            else if (event.type === 'DELETED') this.#remove(event.object);
          },
          signal,
        );
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof KubeApiError && error.status === 410) {
          resourceVersion = undefined;
          continue;
        }
        this.#handlers.error?.(error);
        failures++;
        const delay = Math.min(5000, 100 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        await sleep(delay, undefined, { signal }).catch(() => {});
      }
    }
  }

  #replace(items: T[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(key(item));
      this.#upsert(item);
    }
    for (const [k, old] of [...this.#store]) {
      if (!seen.has(k)) this.#remove(old);
    }
  }

  #upsert(object: T): void {
    const k = key(object);
    const old = this.#store.get(k);
    // The same name with another uid is another object: the old one is gone.
    if (old && old.metadata?.uid !== object.metadata?.uid) this.#remove(old);
    else if (old && old.metadata?.resourceVersion === object.metadata?.resourceVersion) return;
    this.#store.set(k, object);
    this.#handlers.upsert(object);
  }

  #remove(object: T): void {
    const k = key(object);
    const old = this.#store.get(k);
    if (!old) return;
    this.#store.delete(k);
    this.#handlers.remove(old.metadata?.uid === object.metadata?.uid ? object : old);
  }
}

function key(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}
