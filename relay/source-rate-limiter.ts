// A per-source-IP budget per one-second window, for events that cost the relay something (new
// flows, Redis lookups). Memory is bounded: at most `maxSources` windows are tracked, and a source
// that would need one more is refused, so a flood of spoofed addresses cannot grow the map.
export class SourceRateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();
  readonly #perSecond: number;
  readonly #maxSources: number;

  constructor(perSecond: number, maxSources = 65_536) {
    this.#perSecond = perSecond;
    this.#maxSources = maxSources;
  }

  /** True if `source` may spend one more unit at time `now` (ms). */
  allow(source: string, now: number): boolean {
    const window = this.#windows.get(source);
    if (window === undefined) {
      if (this.#windows.size >= this.#maxSources) {
        this.sweep(now);
        if (this.#windows.size >= this.#maxSources) return false;
      }
      this.#windows.set(source, { start: now, count: 1 });
      return true;
    }
    if (now - window.start >= 1000) {
      window.start = now;
      window.count = 1;
      return true;
    }
    if (window.count >= this.#perSecond) return false;
    window.count++;
    return true;
  }

  /** Forgets windows that have ended. */
  sweep(now: number): void {
    for (const [source, window] of this.#windows)
      if (now - window.start >= 1000) this.#windows.delete(source);
  }

  get size(): number {
    return this.#windows.size;
  }
}
