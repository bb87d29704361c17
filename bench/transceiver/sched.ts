// What the scheduler says about the transceiver's threads (Linux /proc): how long its main thread
// was runnable but waiting for its core (other threads ran there: V8's helpers of its own, or
// another process), and the CPU time of its other threads. On a core of its own the main thread
// only waits behind its own helpers, so a long wait with idle helpers means another process.
import { readdirSync, readFileSync } from 'node:fs';
import { setInterval as every } from 'node:timers/promises';

const TICKS_PER_SECOND = 100;

export interface ThreadSample {
  /** Time the main thread waited on a run queue (s), from /proc/<pid>/task/<pid>/schedstat. */
  readonly mainWaitS: number;
  /** CPU time (s) of every other thread of the process. */
  readonly helpersCpuS: number;
}

export function sampleThreads(pid: number): ThreadSample {
  let mainWaitS = 0;
  let helpersCpuS = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ');
    mainWaitS = Number(fields[1]) / 1e9;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      if (tid === String(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        helpersCpuS += (Number(after[11]) + Number(after[12])) / TICKS_PER_SECOND;
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process is gone, or no schedstat (kernel without CONFIG_SCHEDSTATS)
  }
  return { mainWaitS, helpersCpuS };
}

/**
 * Own CPU seconds (user + system, not reaped children) of every process, by PID. Reaped children are
 * left out on purpose: when a long-lived child ends, its whole lifetime's CPU would land in its
 * parent's counters at once and look like a burst.
 */
export function readProcessesOwnCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), (Number(after[11]) + Number(after[12])) / TICKS_PER_SECOND);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds that processes outside `ours` used between two samples (new ones count from zero). */
export function foreignSeconds(
  before: Map<number, number>,
  after: Map<number, number>,
  ours: ReadonlySet<number>,
): number {
  let sum = 0;
  for (const [pid, seconds] of after) {
    if (!ours.has(pid)) sum += Math.max(0, seconds - (before.get(pid) ?? 0));
  }
  return sum;
}

/**
 * Samples the CPU of processes that are not ours every `sliceMs` until stopped: a burst of a few
 * hundred ms from another process stalls the transceiver as much as a steady load, but hardly shows
 * in an average over the whole window.
 */
export class ForeignSampler {
  readonly #ours: ReadonlySet<number>;
  readonly #abort = new AbortController();
  readonly #done: Promise<void>;
  /** Highest load of other processes in one slice (cores). */
  peakCores = 0;

  constructor(ours: ReadonlySet<number>, sliceMs = 500) {
    this.#ours = ours;
    this.#done = this.#run(sliceMs);
  }

  async #run(sliceMs: number): Promise<void> {
    let before = readProcessesOwnCpu();
    let at = performance.now();
    try {
      for await (const _ of every(sliceMs, undefined, { signal: this.#abort.signal })) {
        const now = readProcessesOwnCpu();
        const seconds = (performance.now() - at) / 1000;
        this.peakCores = Math.max(this.peakCores, foreignSeconds(before, now, this.#ours) / seconds);
        before = now;
        at = performance.now();
      }
    } catch {
      // aborted
    }
  }

  async stop(): Promise<number> {
    this.#abort.abort();
    await this.#done;
    return this.peakCores;
  }
}

/** A process's resident set (bytes), from VmRSS in /proc/<pid>/status; NaN when unreadable. */
export function readRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}
