// The load of other processes (and of the hypervisor, as steal) beside a benchmark's own: measured
// before a step to wait for quiet, and sampled in slices during one, since a burst of a few hundred
// ms from another process stalls what is measured as much as a steady load, but hardly shows in an
// average over the whole window.
import { setInterval as every, setTimeout as sleep } from 'node:timers/promises';
import { foreignCpuSeconds, readAllProcessesCpu, readStealSeconds } from './proc.ts';

export interface ForeignLoad {
  /** Cores that processes outside `ours` used. */
  readonly foreignCores: number;
  /** Cores the hypervisor took (steal). */
  readonly stealCores: number;
}

/** The load beside ours over the next `ms`; `children`: count processes' reaped children too. */
export async function foreignLoadOver(
  ours: ReadonlySet<number>,
  ms: number,
  children: boolean,
): Promise<ForeignLoad> {
  const before = readAllProcessesCpu(children);
  const stealBefore = readStealSeconds();
  const start = performance.now();
  await sleep(ms);
  const seconds = (performance.now() - start) / 1000;
  return {
    foreignCores: foreignCpuSeconds(before, readAllProcessesCpu(children), ours) / seconds,
    stealCores: (readStealSeconds() - stealBefore) / seconds,
  };
}

/** Samples the CPU of processes that are not ours (own time, no reaped children) every `sliceMs` until stopped. */
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
    let before = readAllProcessesCpu(false);
    let at = performance.now();
    try {
      for await (const _ of every(sliceMs, undefined, { signal: this.#abort.signal })) {
        const now = readAllProcessesCpu(false);
        const seconds = (performance.now() - at) / 1000;
        this.peakCores = Math.max(this.peakCores, foreignCpuSeconds(before, now, this.#ours) / seconds);
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
