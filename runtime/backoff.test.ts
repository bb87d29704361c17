import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelayMs, DEFAULT_BACKOFF } from './backoff.ts';

const policy = { initialMs: 100, maxMs: 1_000 };

describe('backoffDelayMs', () => {
  test('no failure, no wait', () => {
    assert.equal(
      backoffDelayMs(0, policy, () => 0.5),
      0,
    );
  });

  test('doubles from initialMs and stops at maxMs (upper end of the jitter)', () => {
    const top = () => 0.999_999;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 50, 5_000].map((failures) => backoffDelayMs(failures, policy, top)),
      [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000],
    );
  });

  test('jitter picks within [nominal/2, nominal]', () => {
    assert.equal(
      backoffDelayMs(3, policy, () => 0),
      200,
    );
    assert.equal(
      backoffDelayMs(3, policy, () => 0.5),
      300,
    );
    for (let i = 0; i < 1_000; i++) {
      const delay = backoffDelayMs(4, policy);
      assert.ok(delay >= 400 && delay <= 800, `${delay}`);
    }
  });

  test('different random draws spread the retries of many replicas', () => {
    const delays = new Set(Array.from({ length: 100 }, () => backoffDelayMs(10, DEFAULT_BACKOFF)));
    assert.ok(delays.size > 50, `only ${delays.size} distinct delays`);
    for (const delay of delays) assert.ok(delay >= 15_000 && delay <= 30_000);
  });
});
