// What the operator just did to pods that its pod cache may not show yet (client-go's
// "expectations"): a reconcile that ran on a cache without the pod it created a moment ago would
// create another. Created pods count as present and deleted ones as gone until the cache shows it
// or `ttlMs` passes (a write whose watch event never comes must not block the pool for ever).
import type { ObservedTransceiverPod } from './observed-transceiver-pod.ts';

interface Pending {
  readonly pod: ObservedTransceiverPod;
  readonly at: number;
}

export class PodExpectations {
  readonly #ttlMs: number;
  readonly #created = new Map<string, Map<string, Pending>>();
  readonly #deleted = new Map<string, Map<string, Pending>>();

  constructor(ttlMs = 30_000) {
    this.#ttlMs = ttlMs;
  }

  expectCreated(poolKey: string, pod: ObservedTransceiverPod, now: number): void {
    mapOf(this.#created, poolKey).set(pod.name, { pod, at: now });
  }

  expectDeleted(poolKey: string, pod: ObservedTransceiverPod, now: number): void {
    mapOf(this.#deleted, poolKey).set(pod.name, { pod, at: now });
  }

  /**
   * The pool's pods as they are after the operator's own recent writes: `cached` plus created pods
   * the cache lacks, minus deleted pods the cache still shows as live. Satisfied or expired
   * expectations are dropped.
   */
  view(poolKey: string, cached: readonly ObservedTransceiverPod[], now: number): ObservedTransceiverPod[] {
    const byName = new Map(cached.map((pod) => [pod.name, pod]));
    const created = this.#created.get(poolKey);
    const deleted = this.#deleted.get(poolKey);
    const out = [...cached];
    for (const [name, pending] of created ?? []) {
      if (byName.has(name) || now - pending.at > this.#ttlMs) created!.delete(name);
      else out.push(pending.pod);
    }
    for (const [name, pending] of deleted ?? []) {
      const seen = byName.get(name);
      if (
        seen === undefined ||
        seen.terminating ||
        seen.uid !== pending.pod.uid ||
        now - pending.at > this.#ttlMs
      ) {
        deleted!.delete(name);
      }
    }
    if (created?.size === 0) this.#created.delete(poolKey);
    if (deleted?.size === 0) this.#deleted.delete(poolKey);
    const gone = this.#deleted.get(poolKey);
    return gone === undefined ? out : out.filter((pod) => !gone.has(pod.name));
  }

  /** True while some write to the pool is not yet in the cache. */
  pending(poolKey: string): boolean {
    return this.#created.has(poolKey) || this.#deleted.has(poolKey);
  }

  forget(poolKey: string): void {
    this.#created.delete(poolKey);
    this.#deleted.delete(poolKey);
  }

  clear(): void {
    this.#created.clear();
    this.#deleted.clear();
  }
}

function mapOf<V>(maps: Map<string, Map<string, V>>, key: string): Map<string, V> {
  let map = maps.get(key);
  if (map === undefined) {
    map = new Map();
    maps.set(key, map);
  }
  return map;
}
