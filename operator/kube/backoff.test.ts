import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  const policy = { initialMs: 100, maxMs: 5_000 };
  it('doubles from the initial delay up to the cap', () => {
    const middle = () => 0.5;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((n) => backoffDelay(n, policy, middle)),
      [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000],
    );
  });
  it('spreads by ±20 %', () => {
    assert.equal(
      backoffDelay(3, policy, () => 0),
      320,
    );
    assert.equal(
      backoffDelay(3, policy, () => 1),
      480,
    );
  });
});
