// A delay line: items come out in the order they went in, each at its own due time (entry time plus
// a fixed delay), so the rhythm of the input is preserved. No clock of its own: the caller passes
// `now` and schedules a timer for nextDueAt().

export class DelayLine<T> {
  readonly delayMs: number;
  #items: { dueAt: number; item: T }[] = [];
  #head = 0;

  constructor(delayMs: number) {
    if (!(delayMs >= 0)) throw new RangeError(`delayMs must be ≥ 0, got ${delayMs}`);
    this.delayMs = delayMs;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an item that entered at `now`; it is due at now + delayMs (never before an earlier item). */
  push(item: T, now: number): void {
    const last = this.#items[this.#items.length - 1];
    const dueAt = Math.max(now + this.delayMs, this.size > 0 && last ? last.dueAt : Number.NEGATIVE_INFINITY);
    this.#items.push({ dueAt, item });
  }

  /** When the oldest item is due, or undefined when empty. */
  nextDueAt(): number | undefined {
    return this.#items[this.#head]?.dueAt;
  }

  /** Removes and returns, oldest first, every item due at or before `now`. */
  takeDue(now: number): T[] {
    const due: T[] = [];
    while (this.#head < this.#items.length) {
      const entry = this.#items[this.#head]!;
      if (entry.dueAt > now) break;
      due.push(entry.item);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    return due;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
