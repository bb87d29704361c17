// A caller's real-time pacing: a tick every 20 ms that sends one frame (the command-line caller, the
// benchmark's metronome, the tests' callers). The transceiver paces each call on its own
// (audio/audio-bridge.ts).
//
// `PaceSchedule` is the pure part: ticks sit on a fixed grid (start + k × interval), so timer
// lateness never accumulates into drift. After a stall (a long GC pause, a blocked event loop) the
// ticks missed are run back to back, at most `maxCatchUpTicks` of them; older ones are skipped and
// the schedule carries on from the grid point after now. Catching up a little keeps the audio
// continuous after a short hiccup; never catching up more bounds the burst sent to the network.
//
// `Pacer` is the timer-driven part: one timer at a time, re-armed for the next grid point after
// each wake, cleared by `stop()`.

export interface PaceScheduleOptions {
  /** Tick period (default 20 ms). */
  intervalMs?: number;
  /** Most overdue ticks run on one wake (default 5, i.e. 100 ms of audio); older ones are skipped. */
  maxCatchUpTicks?: number;
}

export interface DueTicks {
  /** Scheduled times of the ticks to run now, oldest first. */
  tickTimesMs: number[];
  /** Ticks given up on because they were too far overdue. */
  skipped: number;
}

export class PaceSchedule {
  readonly startMs: number;
  readonly intervalMs: number;
  readonly maxCatchUpTicks: number;
  /** Index on the grid of the next tick to run. */
  #nextIndex = 0;

  constructor(startMs: number, options: PaceScheduleOptions = {}) {
    this.startMs = startMs;
    this.intervalMs = options.intervalMs ?? 20;
    this.maxCatchUpTicks = Math.max(1, options.maxCatchUpTicks ?? 5);
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
  }

  /** When the next tick is due. */
  get nextDeadlineMs(): number {
    return this.startMs + this.#nextIndex * this.intervalMs;
  }

  /** The ticks due at `nowMs` (the first is due at `startMs`); the schedule moves past them. */
  due(nowMs: number): DueTicks {
    const lastDue = Math.floor((nowMs - this.startMs) / this.intervalMs);
    if (lastDue < this.#nextIndex) return { tickTimesMs: [], skipped: 0 };
    const overdue = lastDue - this.#nextIndex + 1;
    const skipped = Math.max(0, overdue - this.maxCatchUpTicks);
    const tickTimesMs: number[] = [];
    for (let index = this.#nextIndex + skipped; index <= lastDue; index++) {
      tickTimesMs.push(this.startMs + index * this.intervalMs);
    }
    this.#nextIndex = lastDue + 1;
    return { tickTimesMs, skipped };
  }
}

/** What a `Pacer` needs from the outside world; tests pass a fake. */
export interface PacerClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(callback: () => void, delayMs: number): unknown;
  clearTimer(timer: unknown): void;
}

export const systemClock: PacerClock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

export interface PacerStats {
  ticks: number;
  skippedTicks: number;
  /** Largest delay seen between a tick's scheduled time and its run (ms). */
  maxLatenessMs: number;
}

export interface PacerOptions extends PaceScheduleOptions {
  clock?: PacerClock;
}

export class Pacer {
  readonly #onTick: (tickMs: number) => void;
  readonly #options: PaceScheduleOptions;
  readonly #clock: PacerClock;
  #schedule: PaceSchedule | undefined;
  #timer: unknown;
  readonly #stats: PacerStats = { ticks: 0, skippedTicks: 0, maxLatenessMs: 0 };

  /**
   * `onTick` gets the tick's scheduled time (on the grid, not when it actually ran), so everything
   * downstream sees exact 20 ms steps. It should not throw: an exception propagates out of the
   * timer callback (the pacer stays armed).
   */
  constructor(onTick: (tickMs: number) => void, options: PacerOptions = {}) {
    this.#onTick = onTick;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  get running(): boolean {
    return this.#schedule !== undefined;
  }

  get stats(): Readonly<PacerStats> {
    return this.#stats;
  }

  /** Starts ticking: the first tick runs now, synchronously. No-op when running. */
  start(): void {
    if (this.#schedule !== undefined) return;
    this.#schedule = new PaceSchedule(this.#clock.now(), this.#options);
    this.#wake();
  }

  /** Stops ticking; also from inside `onTick`, where the remaining catch-up ticks are dropped. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#schedule = undefined;
  }

  #wake = (): void => {
    this.#timer = undefined;
    const schedule = this.#schedule;
    if (schedule === undefined) return;
    const now = this.#clock.now();
    const { tickTimesMs, skipped } = schedule.due(now);
    this.#stats.skippedTicks += skipped;
    try {
      for (const tickMs of tickTimesMs) {
        if (this.#schedule !== schedule) return; // stopped (or restarted) by a tick
        this.#stats.ticks++;
        this.#stats.maxLatenessMs = Math.max(this.#stats.maxLatenessMs, now - tickMs);
        this.#onTick(tickMs);
      }
    } finally {
      if (this.#schedule === schedule && this.#timer === undefined) {
        // Rounded up: timers have millisecond resolution, and waking early only to find nothing
        // due would cost a second wake.
        const delayMs = Math.max(0, Math.ceil(schedule.nextDeadlineMs - this.#clock.now()));
        this.#timer = this.#clock.setTimer(this.#wake, delayMs);
      }
    }
  };
}
