import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitLine, histogramBuckets, pacingDelays, quantile, summarize, windowQuantile } from './analysis.ts';

/** Offsets (arrival − 20 ms × seq) of a call whose packets leave `delays` ms after grid points. */
function offsetsOf(phase: number, gridIndex: number, delays: number[]): Float64Array {
  // Arrival of packet k = phase + 20 × (gridIndex + k) + delay; offset = arrival − 20 × (seq0 + k).
  const seq0 = 1234;
  return Float64Array.from(delays, (delay) => phase + 20 * (gridIndex - seq0) + delay);
}

describe('analysis', () => {
  test('quantile is nearest rank', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantile(sorted, 0.5), 50);
    assert.equal(quantile(sorted, 0.99), 99);
    assert.equal(quantile(sorted, 1), 100);
    assert.ok(Number.isNaN(quantile([], 0.5)));
    assert.equal(summarize([3, 1, 2]).max, 3);
  });

  test("pacingDelays measures each packet from its run's on-time level", () => {
    const delays: number[] = Array.from({ length: 100 }, (_, i) => (i % 10 === 3 ? 12 : 0.5));
    delays[50] = -20; // a talkspurt's second frame, sent with the first
    const noRuns = new Uint8Array(100);
    const measured = pacingDelays(offsetsOf(5, 42, delays), noRuns);
    assert.equal(measured[0], 0);
    assert.equal(measured[3], 11.5);
    assert.equal(measured[50], 0, 'an early packet is not a negative delay');

    // Two talkspurts of 40 packets, the second 90 ms "earlier" (its first frame reached the far end
    // late and set its level), a DTX packet between them: each run from its own level.
    const offsets = [...Array(40).fill(100), 300, ...Array(40).fill(10)];
    offsets[45] = 25; // 15 ms late within the second run
    const starts = new Uint8Array(offsets.length);
    starts[40] = 1;
    starts[41] = 1;
    const perRun = pacingDelays(offsets, starts);
    assert.equal(perRun.length, 80, 'the lone DTX packet is not measured');
    assert.equal(Math.max(...perRun.subarray(0, 40)), 0);
    assert.equal(perRun[44], 15);
    assert.equal(pacingDelays(offsets, noRuns.subarray(0, 81)).length, 81);
    assert.equal(Math.max(...pacingDelays(offsets, noRuns.subarray(0, 81))), 290, 'one level for the call');
  });

  test('fitLine', () => {
    const { slope, intercept } = fitLine([
      [10, 0.2],
      [20, 0.3],
      [40, 0.5],
    ]);
    assert.ok(Math.abs(slope - 0.01) < 1e-12);
    assert.ok(Math.abs(intercept - 0.1) < 1e-12);
  });

  test('histogramBuckets picks one label set, sorted, +Inf last', () => {
    const name = 'voice_edge_transceiver_audio_latency_seconds';
    const samples = new Map<string, number>([
      [`${name}_bucket{le="0.01",direction="to_backend"}`, 7],
      [`${name}_bucket{le="+Inf",direction="to_backend"}`, 9],
      [`${name}_bucket{le="0.005",direction="to_backend"}`, 4],
      [`${name}_bucket{le="0.005",direction="to_client"}`, 1],
      [`${name}_sum{direction="to_backend"}`, 0.1],
      [`${name}_count{direction="to_backend"}`, 9],
    ]);
    assert.deepEqual(histogramBuckets(samples, name, { direction: 'to_backend' }), [
      { le: 0.005, count: 4 },
      { le: 0.01, count: 7 },
      { le: Number.POSITIVE_INFINITY, count: 9 },
    ]);
    assert.equal(histogramBuckets(samples, name, { direction: 'elsewhere' }), undefined);
    assert.equal(histogramBuckets(new Map(), name, {}), undefined);
  });

  test('windowQuantile interpolates inside the bucket of the window differences', () => {
    const inf = Number.POSITIVE_INFINITY;
    const before = [
      { le: 0.001, count: 100 },
      { le: 0.005, count: 100 },
      { le: 0.01, count: 100 },
      { le: inf, count: 100 },
    ];
    // In the window: 10 in (0, 1 ms], 80 in (1, 5 ms], 10 in (5, 10 ms].
    const after = [
      { le: 0.001, count: 110 },
      { le: 0.005, count: 190 },
      { le: 0.01, count: 200 },
      { le: inf, count: 200 },
    ];
    // Rank 50: 40 of the 80 in (1, 5] → halfway, 3 ms.
    assert.ok(Math.abs(windowQuantile(before, after, 0.5) - 0.003) < 1e-12);
    // Rank 99: 9 of the 10 in (5, 10] → 9.5 ms.
    assert.ok(Math.abs(windowQuantile(before, after, 0.99) - 0.0095) < 1e-12);
    // Rank 5: half of the first bucket, from 0.
    assert.ok(Math.abs(windowQuantile(before, after, 0.05) - 0.0005) < 1e-12);
    // The histogram appeared during the window: counted from zero.
    assert.ok(Math.abs(windowQuantile(undefined, after, 0.5) - 0.001 * (100 / 110)) < 1e-12);
  });

  test('windowQuantile: nothing observed is NaN; a rank in +Inf is the highest finite bound', () => {
    const inf = Number.POSITIVE_INFINITY;
    const same = [
      { le: 0.02, count: 5 },
      { le: inf, count: 5 },
    ];
    assert.ok(Number.isNaN(windowQuantile(same, same, 0.5)));
    const after = [
      { le: 0.02, count: 5 },
      { le: inf, count: 15 },
    ];
    assert.equal(windowQuantile(same, after, 0.99), 0.02);
    // A bucket left empty by the window is skipped, not interpolated into.
    const empty = [
      { le: 0.001, count: 0 },
      { le: 0.002, count: 0 },
      { le: 0.004, count: 4 },
      { le: inf, count: 4 },
    ];
    assert.ok(Math.abs(windowQuantile(undefined, empty, 0.5) - 0.003) < 1e-12);
  });
});
