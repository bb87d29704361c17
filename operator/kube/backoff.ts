// Capped exponential backoff with jitter: after n consecutive failures wait about initial × 2^(n-1),
// never more than max, spread ±20 % so restarted watchers do not all hit the API server at once.
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

export function backoffDelay(
  failures: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  if (failures <= 0) return 0;
  const exponential = policy.initialMs * 2 ** Math.min(failures - 1, 30);
  const capped = Math.min(policy.maxMs, exponential);
  return Math.round(capped * (0.8 + 0.4 * random()));
}
