// How long to wait before retrying something that failed `attempt` times in a row: exponential,
// capped, with jitter so that every replica (relay, signaling, operator) that lost the API server at
// the same moment does not come back at the same moment too. Pure: the caller owns the clock and the attempt count.

export interface BackoffPolicy {
  /** The delay after the first failure (before jitter). */
  readonly initialMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

/**
 * The delay after `failures` failures in a row (1 = the first): initialMs·2^(failures−1) capped at
 * maxMs, then "equal jitter", a uniform pick in [delay/2, delay]: the mean stays near the nominal
 * delay and a retry never comes sooner than half of it. `random` returns [0, 1).
 */
export function backoffDelayMs(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  if (failures < 1) return 0;
  // 2^30 already exceeds any sane cap; stopping there keeps the arithmetic finite.
  const nominal = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(nominal / 2 + (nominal / 2) * random());
}
