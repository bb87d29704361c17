import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitLine, gridPhase, pacingDelays, quantile, skippedTicks, summarize } from './analysis.ts';

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

  test('gridPhase finds the start of the cluster, also across 0 / 20 ms and with a stall', () => {
    for (const phase of [3.2, 19.6]) {
      // 10 calls, 0.25 ms apart in the tick's loop, 400 ticks with up to 1 ms of timer lateness.
      const calls = Array.from({ length: 10 }, (_, call) =>
        offsetsOf(
          phase,
          call * 13,
          Array.from({ length: 400 }, (_, k) => {
            const stall = k >= 200 && k < 210 ? (210 - k) * 10 : 0; // 100 ms, caught up
            return 0.3 + call * 0.25 + ((k * 7919) % 100) / 100 + stall;
          }),
        ),
      );
      const found = gridPhase(calls);
      const difference = ((((found - phase - 0.3 + 10) % 20) + 20) % 20) - 10;
      assert.ok(Math.abs(difference) < 0.1, `phase ${phase}: found ${found}`);
    }
  });

  test('pacingDelays measures each packet from its grid point', () => {
    const delays = [0.4, 3, 17, 25, 1];
    const measured = pacingDelays(offsetsOf(5, 42, delays), 5);
    assert.deepEqual(
      Array.from(measured, (d) => Math.round(d * 1000) / 1000),
      delays,
    );
  });

  test('skippedTicks sees offsets step by 20 ms', () => {
    const steady = Array.from({ length: 200 }, (_, i) => 100 + (i % 3) * 0.5);
    assert.equal(skippedTicks(Float64Array.from(steady)), 0);
    const skipped = steady.map((offset, i) => (i >= 120 ? offset + 40 : offset));
    assert.equal(skippedTicks(Float64Array.from(skipped)), 2);
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
});
