import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SourceRateLimiter } from './source-rate-limiter.ts';

describe('SourceRateLimiter', () => {
  test('allows perSecond units per source per one-second window', () => {
    const limiter = new SourceRateLimiter(3);
    assert.equal(limiter.allow('a', 1000), true);
    assert.equal(limiter.allow('a', 1100), true);
    assert.equal(limiter.allow('a', 1999), true);
    assert.equal(limiter.allow('a', 1999), false);
    assert.equal(limiter.allow('a', 1999), false);
    // The window starts at the first unit and lasts exactly 1000 ms.
    assert.equal(limiter.allow('a', 2000), true);
    assert.equal(limiter.allow('a', 2000), true);
    assert.equal(limiter.allow('a', 2000), true);
    assert.equal(limiter.allow('a', 2999), false);
  });

  test('sources are independent', () => {
    const limiter = new SourceRateLimiter(1);
    assert.equal(limiter.allow('192.0.2.1', 0), true);
    assert.equal(limiter.allow('192.0.2.1', 1), false);
    assert.equal(limiter.allow('192.0.2.2', 1), true);
    assert.equal(limiter.allow('2001:db8::1', 1), true);
    assert.equal(limiter.size, 3);
  });

  test('sweep forgets windows that have ended', () => {
    const limiter = new SourceRateLimiter(5);
    limiter.allow('a', 0);
    limiter.allow('b', 500);
    limiter.sweep(999);
    assert.equal(limiter.size, 2);
    limiter.sweep(1000);
    assert.equal(limiter.size, 1);
    limiter.sweep(1500);
    assert.equal(limiter.size, 0);
  });

  test('memory is bounded: a new source beyond maxSources is refused until windows end', () => {
    const limiter = new SourceRateLimiter(10, 3);
    for (const source of ['a', 'b', 'c']) assert.equal(limiter.allow(source, 0), true);
    assert.equal(limiter.allow('d', 500), false);
    assert.equal(limiter.size, 3);
    // Known sources still get their budget.
    assert.equal(limiter.allow('a', 500), true);
    // Once the windows end, the full map is swept on demand.
    assert.equal(limiter.allow('d', 1000), true);
    assert.equal(limiter.size, 1);
  });

  test('property: never more than perSecond allowed within any window, never more than maxSources tracked', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.integer({ min: 0, max: 300 })), {
          maxLength: 200,
        }),
        (perSecond, maxSources, events) => {
          const limiter = new SourceRateLimiter(perSecond, maxSources);
          const allowed = new Map<string, number[]>();
          let now = 0;
          for (const [source, step] of events) {
            now += step;
            if (limiter.allow(source, now)) {
              const times = allowed.get(source) ?? [];
              times.push(now);
              allowed.set(source, times);
            }
            assert.ok(limiter.size <= maxSources);
          }
          // Windows are fixed, so 2·perSecond may fall within 1000 ms across a boundary, never more.
          for (const times of allowed.values()) {
            for (let i = 0; i + 2 * perSecond < times.length; i++) {
              assert.ok(times[i + 2 * perSecond]! - times[i]! >= 1000);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
