// The reconcile queue (client-go's workqueue semantics): a key is queued at most once; a key added
// while it is being reconciled runs again right after, never twice at once; failures requeue it
// with a per-key capped exponential backoff; `addAfter` keeps one timer per key (the earliest).
// Memory is bounded by the number of distinct keys, i.e. by the objects being watched.
import { type BackoffPolicy, backoffDelayMs } from '../runtime/backoff.ts';

export interface ReconcileOutcome {
  /** Reconcile this key again after this long even if nothing changes (timeouts, windows). */
  readonly requeueAfterMs?: number | undefined;
}

export type Reconcile = (key: string) => Promise<ReconcileOutcome | undefined>;

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  readonly #backoff: BackoffPolicy;
  /** Longest delay addAfter accepts: a wrong clock or spec cannot park a key for days. */
  readonly #maxDelayMs: number;
  #wake: (() => void) | undefined;
  #shutDown = false;

  constructor(options: { backoff: BackoffPolicy; maxDelayMs?: number }) {
    this.#backoff = options.backoff;
    this.#maxDelayMs = options.maxDelayMs ?? 10 * 60_000;
  }

  add(key: string): void {
    if (this.#shutDown) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.#wake?.();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shutDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const delay = Math.min(delayMs, this.#maxDelayMs);
    const at = Date.now() + delay;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delay);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Requeues after the key's next backoff step. */
  addRateLimited(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelayMs(failures, this.#backoff);
    this.addAfter(key, delay);
    return delay;
  }

  /** The key reconciled cleanly: its next failure starts the backoff from the beginning. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  get length(): number {
    return this.#queue.length;
  }

  /**
   * Runs `workers` loops that take keys and reconcile them until shutdown. A rejected reconcile
   * requeues the key with backoff and is reported to `onError`.
   */
  async run(
    workers: number,
    reconcile: Reconcile,
    onError: (key: string, error: unknown) => void,
  ): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.#next();
        if (key === undefined) return;
        try {
          const outcome = await reconcile(key);
          this.forget(key);
          if (outcome?.requeueAfterMs !== undefined) this.addAfter(key, outcome.requeueAfterMs);
        } catch (error) {
          onError(key, error);
          this.addRateLimited(key);
        } finally {
          this.#processing.delete(key);
          if (this.#dirty.delete(key)) this.add(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, workers) }, worker));
  }

  /** Stops handing out keys (reconciles in progress finish) and drops every timer. */
  shutdown(): void {
    this.#shutDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queue.length = 0;
    this.#queued.clear();
    this.#dirty.clear();
    this.#wake?.();
  }

  async #next(): Promise<string | undefined> {
    while (!this.#shutDown) {
      const key = this.#queue.shift();
      if (key !== undefined) {
        this.#queued.delete(key);
        this.#processing.add(key);
        // Another worker may be waiting too: let it look at the rest of the queue.
        if (this.#queue.length > 0) this.#wake?.();
        return key;
      }
      await new Promise<void>((resolve) => {
        const previous = this.#wake;
        this.#wake = () => {
          this.#wake = undefined;
          previous?.();
          resolve();
        };
      });
    }
    return undefined;
  }
}
