// The search for the highest lossless rate. Pure logic over an async "run one step at this rate"
// function, so the rules are in one place (docs/benchmarks.md repeats them):
//
//   A step is LOSSLESS when, over a fixed-duration step at a constant offered rate,
//     - the load generator sent every planned packet (no send error) and kept pace (its last packet
//       left no later than 2 % of the step duration after the planned end), and
//     - (sent − received) / sent ≤ lossThreshold (default 1e-4, i.e. ≤ 0.01 %), where "received"
//       counts distinct echoes of this step that arrived before the end of the drain period, and
//     - the median round-trip time stays ≤ maxP50Us (default 1 ms): a forwarder that is slower than
//       the offered rate but hides it in a multi-megabyte socket buffer for the length of a short
//       step is not lossless, it is queueing (its RTT climbs to tens of milliseconds). RFC 2544
//       uses 60 s trials for the same reason; the RTT bound lets a step last seconds instead.
//
//   A rate whose step fails is tried once more (`retries`) and fails only if the repeat fails too:
//   on a shared machine one stall from another process would otherwise decide the whole search.
//
//   Search: start at `startRate`; double while lossless (up to `maxRate`); then bisect
//   geometrically between the highest lossless and the lowest lossy rate until hi/lo ≤ 1 + precision;
//   then repeat the highest lossless rate once more (confirmation) and step 5 % down (at most
//   `confirmations` times) when the repeat loses. The result is that confirmed rate: it passed at
//   least twice.

export interface StepVerdict {
  readonly rate: number;
  readonly lossless: boolean;
  /** The load generator fell behind: the step says nothing about the forwarder. */
  readonly loadgenLimited: boolean;
}

export interface SearchOptions {
  readonly startRate: number;
  readonly minRate: number;
  readonly maxRate: number;
  /** Stop bisecting when hi/lo ≤ 1 + precision. */
  readonly precision: number;
  /** Rates are rounded to a multiple of this. */
  readonly granularity: number;
  readonly confirmations: number;
  /** Extra tries of a rate whose step failed (the last try decides). */
  readonly retries: number;
}

export interface SearchResult<T extends StepVerdict> {
  /** Highest confirmed lossless rate; 0 when even minRate lost packets. */
  readonly maxLosslessRate: number;
  /** False when no repeat confirmed it: the rate is then the best single lossless step (noisy). */
  readonly confirmed: boolean;
  /** True when the search stopped at maxRate without finding a lossy rate. */
  readonly hitCeiling: boolean;
  /** True when a step at or below the lowest lossy rate failed because the load generator fell behind. */
  readonly loadgenLimited: boolean;
  readonly steps: readonly T[];
}

export type StepFailure = 'loss' | 'queueing' | 'loadgen';

export function isLossless(
  step: {
    planned: number;
    sent: number;
    send_errors: number;
    received: number;
    send_elapsed_ms: number;
    rtt_ns: { p50: number };
  },
  durationMs: number,
  lossThreshold: number,
  maxP50Us: number,
): { lossless: boolean; lossRatio: number; loadgenLimited: boolean; failure: StepFailure | undefined } {
  const lost = Math.max(0, step.sent - step.received);
  const lossRatio = step.sent > 0 ? lost / step.sent : 1;
  const loadgenLimited =
    step.sent < step.planned || step.send_errors > 0 || step.send_elapsed_ms > durationMs * 1.02;
  const failure: StepFailure | undefined = loadgenLimited
    ? 'loadgen'
    : lossRatio > lossThreshold
      ? 'loss'
      : step.rtt_ns.p50 > maxP50Us * 1000
        ? 'queueing'
        : undefined;
  return { lossless: failure === undefined, lossRatio, loadgenLimited, failure };
}

export async function searchMaxLossless<T extends StepVerdict>(
  runStep: (rate: number) => Promise<T>,
  options: SearchOptions,
): Promise<SearchResult<T>> {
  const steps: T[] = [];
  const round = (rate: number) =>
    Math.max(options.granularity, Math.round(rate / options.granularity) * options.granularity);
  const run = async (rate: number) => {
    let verdict = await runStep(round(rate));
    steps.push(verdict);
    for (let retry = 0; retry < options.retries && !verdict.lossless; retry++) {
      verdict = await runStep(round(rate));
      steps.push(verdict);
    }
    return verdict;
  };

  let lo = 0; // highest lossless rate seen
  let hi = Number.POSITIVE_INFINITY; // lowest lossy rate seen
  let rate = round(options.startRate);
  // Ramp: double up while lossless, halve down while lossy.
  for (;;) {
    const verdict = await run(rate);
    if (verdict.lossless) {
      lo = rate;
      if (hi !== Number.POSITIVE_INFINITY || rate >= options.maxRate) break;
      rate = Math.min(round(rate * 2), round(options.maxRate));
    } else {
      hi = rate;
      if (lo > 0) break;
      if (rate <= options.minRate) break;
      rate = Math.max(round(rate / 2), round(options.minRate));
    }
  }
  if (lo === 0) {
    return {
      maxLosslessRate: 0,
      confirmed: false,
      hitCeiling: false,
      loadgenLimited: limitedBelow(steps, hi),
      steps,
    };
  }
  // Bisect (geometric midpoint).
  while (hi !== Number.POSITIVE_INFINITY && hi / lo > 1 + options.precision) {
    const mid = round(Math.sqrt(lo * hi));
    if (mid <= lo || mid >= hi) break;
    const verdict = await run(mid);
    if (verdict.lossless) lo = mid;
    else hi = mid;
  }
  // Confirm the result with a repeat; back off 5 % per failed repeat.
  let confirmed = 0;
  let candidate = lo;
  for (let attempt = 0; attempt <= options.confirmations; attempt++) {
    const verdict = await runStep(candidate);
    steps.push(verdict);
    if (verdict.lossless) {
      confirmed = candidate;
      break;
    }
    candidate = round(candidate * 0.95);
    if (candidate < options.minRate) break;
  }
  return {
    maxLosslessRate: confirmed > 0 ? confirmed : lo,
    confirmed: confirmed > 0,
    hitCeiling: hi === Number.POSITIVE_INFINITY,
    loadgenLimited: limitedBelow(steps, hi),
    steps,
  };
}

/** Whether a step at or below `bound` failed because the load generator fell behind. */
function limitedBelow(steps: readonly StepVerdict[], bound: number): boolean {
  return steps.some((step) => step.loadgenLimited && step.rate <= bound);
}
