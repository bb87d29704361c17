// Pure arithmetic of the transceiver benchmark: percentiles, the pacing delay of returned packets,
// the quantiles of a window of a Prometheus histogram.
//
// Within a run of packets whose RTP timestamps go up by one 20 ms frame (960 at 48 kHz) each, the
// far end follows the audio's timeline (a talkspurt), so arrival − RTP timestamp in ms ("offset")
// is a constant plus how late that packet left behind real time: the transceiver's timers, its
// event loop, SRTP and the socket, the relay, the caller's wake-up. The constant is unknown, and it
// is per run, not per call: the far end stamps a talkspurt's first packet with the real time it
// leaves, so a first frame that reached it late (a stall at the start of the agent's turn) sets a
// lower level for the rest of that talkspurt only. `pacingDelays` takes each run's 5th-percentile
// offset as its on-time level (a low quantile rather than the minimum: a talkspurt may start with
// two frames at once, one of them 20 ms "early") and measures every packet of the run from there.
// Packets of runs shorter than MIN_RUN (DTX frames, stamped one by one with real time) have no
// timeline to be late against and are left out.

/** The q-quantile (0…1) of sorted values (nearest rank), NaN for none. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function sortedCopy(values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort();
}

export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(values: Iterable<number>): Summary {
  const sorted = sortedCopy(values);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** Runs shorter than this (packets) are not measured (see above). */
export const MIN_RUN = 5;

/**
 * Delays (ms) of one call's packets behind their run's on-time level (its 5th-percentile offset).
 * `runStarts[i]` is non-zero where packet i starts a run (its timestamp is not one frame after the
 * previous packet's); packet 0 always does. Packets of runs shorter than MIN_RUN are left out.
 */
export function pacingDelays(offsets: ArrayLike<number>, runStarts: ArrayLike<number>): Float64Array {
  const out: number[] = [];
  let start = 0;
  for (let end = 1; end <= offsets.length; end++) {
    if (end < offsets.length && !runStarts[end]) continue;
    if (end - start >= MIN_RUN) {
      const run = Array.from({ length: end - start }, (_, i) => offsets[start + i]!);
      const base = quantile(sortedCopy(run), 0.05);
      for (const offset of run) out.push(Math.max(0, offset - base));
    }
    start = end;
  }
  return Float64Array.from(out);
}

/** Least-squares line through (x, y): the marginal cost per call and the fixed part. */
export function fitLine(points: readonly (readonly [number, number])[]): {
  slope: number;
  intercept: number;
} {
  const n = points.length;
  if (n < 2) return { slope: Number.NaN, intercept: Number.NaN };
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return { slope, intercept: (sy - slope * sx) / n };
}

/** One cumulative bucket of a Prometheus histogram: observations ≤ `le` (Infinity for +Inf). */
export interface Bucket {
  readonly le: number;
  readonly count: number;
}

function parseLabels(text: string): Map<string, string> {
  const labels = new Map<string, string>();
  for (const match of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
    labels.set(match[1]!, match[2]!);
  return labels;
}

/**
 * The buckets of histogram `name` whose labels include `match`, from parsed exposition samples
 * (`name_bucket{…,le="…"}` → value), sorted by bound; undefined when the histogram is absent.
 */
export function histogramBuckets(
  samples: ReadonlyMap<string, number>,
  name: string,
  match: Readonly<Record<string, string>>,
): Bucket[] | undefined {
  const prefix = `${name}_bucket{`;
  const buckets: Bucket[] = [];
  for (const [key, value] of samples) {
    if (!key.startsWith(prefix) || !key.endsWith('}')) continue;
    const labels = parseLabels(key.slice(prefix.length, -1));
    if (!Object.entries(match).every(([k, v]) => labels.get(k) === v)) continue;
    const le = labels.get('le');
    if (le === undefined) continue;
    buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
  }
  return buckets.length === 0 ? undefined : buckets.sort((a, b) => a.le - b.le);
}

/**
 * The q-quantile (0…1) of the observations made between two readings of one histogram, from the
 * buckets' differences, interpolating linearly inside the bucket where the rank falls (between the
 * previous bound, 0 for the first, and its own), as Prometheus's histogram_quantile does. A rank
 * in the +Inf bucket gives the highest finite bound (a lower bound of the truth). NaN when nothing
 * was observed in between. `before` may be undefined (the histogram appeared in between: from 0).
 */
export function windowQuantile(
  before: readonly Bucket[] | undefined,
  after: readonly Bucket[],
  q: number,
): number {
  const was = new Map(before?.map((b) => [b.le, b.count]));
  const deltas = after.map((b) => ({ le: b.le, count: Math.max(0, b.count - (was.get(b.le) ?? 0)) }));
  const total = deltas.length === 0 ? 0 : deltas[deltas.length - 1]!.count;
  if (!(total > 0)) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const bucket of deltas) {
    if (bucket.count >= rank && bucket.count > below) {
      if (!Number.isFinite(bucket.le)) return lower;
      return lower + ((bucket.le - lower) * (rank - below)) / (bucket.count - below);
    }
    if (Number.isFinite(bucket.le)) lower = bucket.le;
    below = bucket.count;
  }
  return lower;
}
