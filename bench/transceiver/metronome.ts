// The one timer that drives every caller of the load generator. Callers are spread over
// PHASE_GROUPS groups whose 20 ms grids are offset by 20 / PHASE_GROUPS ms, so their packets reach
// the transceiver at all phases of its own 20 ms pacer (as independent callers would) and the load
// generator sends in small batches instead of one big one. Built on the transceiver's Pacer: ticks
// sit on a fixed grid (no drift), and a late wake runs the missed ticks back to back.
import { performance } from 'node:perf_hooks';
import { Pacer } from '../../cli/pacer.ts';

export const PHASE_GROUPS = 4;
const INTERVAL_MS = 20 / PHASE_GROUPS;

export interface Tickable {
  tick(): void;
}

export class Metronome {
  readonly #groups: Set<Tickable>[] = Array.from({ length: PHASE_GROUPS }, () => new Set());
  readonly #pacer: Pacer;
  #tick = 0;
  #next = 0;
  /** How late each tick ran (ms), for the load side's health; reset by `takeLateness`. */
  #lateness: number[] = [];

  constructor() {
    this.#pacer = new Pacer(
      (tickMs) => {
        this.#lateness.push(performance.now() - tickMs);
        const group = this.#groups[this.#tick++ % PHASE_GROUPS]!;
        for (const caller of group) caller.tick();
      },
      // A stall of up to 200 ms is caught up rather than skipped: every caller keeps 50 packets/s.
      { intervalMs: INTERVAL_MS, maxCatchUpTicks: 200 / INTERVAL_MS },
    );
  }

  start(): void {
    this.#pacer.start();
  }

  stop(): void {
    this.#pacer.stop();
  }

  /** Adds a caller to the next group in turn. */
  add(caller: Tickable): void {
    this.#groups[this.#next++ % PHASE_GROUPS]!.add(caller);
  }

  remove(caller: Tickable): void {
    for (const group of this.#groups) group.delete(caller);
  }

  get skippedTicks(): number {
    return this.#pacer.stats.skippedTicks;
  }

  /** Lateness of the ticks since the last call (ms). */
  takeLateness(): number[] {
    const taken = this.#lateness;
    this.#lateness = [];
    return taken;
  }
}
