import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PendingLookups, type PendingLookupsOptions } from './pending-lookups.ts';

function make(options: Partial<PendingLookupsOptions> = {}): PendingLookups {
  return new PendingLookups({
    maxConcurrent: 10,
    lookupsPerSourcePerSecond: 100,
    negativeCacheMs: 5_000,
    ...options,
  });
}

const packet = (n: number) => Buffer.from([0x80, n]);

/** hold() for 192.0.2.1:port (or another address). */
function hold(lookups: PendingLookups, port: number, now = 0, p = packet(0), address = '192.0.2.1') {
  return lookups.hold(`${address}|${port}`, address, 4, port, 2, p, now);
}

describe('PendingLookups', () => {
  test('the first packet starts a lookup, later ones wait for it, settle hands them back in order', () => {
    const lookups = make();
    assert.equal(hold(lookups, 1, 0, packet(1)), 'start');
    assert.equal(hold(lookups, 1, 1, packet(2)), 'held');
    assert.equal(hold(lookups, 1, 2, packet(3)), 'held');
    assert.equal(lookups.inFlight, 1);
    const settled = lookups.settle('192.0.2.1|1', 'found', 3);
    assert.ok(settled);
    assert.deepEqual(settled, {
      address: '192.0.2.1',
      family: 4,
      port: 1,
      socketIndex: 2,
      via: undefined,
      packets: [packet(1), packet(2), packet(3)],
    });
    assert.equal(lookups.inFlight, 0);
    assert.equal(lookups.settle('192.0.2.1|1', 'found', 4), undefined, 'settled once');
    // A found address may be looked up again (e.g. its flow expired later).
    assert.equal(hold(lookups, 1, 5), 'start');
  });

  test('hold_overflow: at most maxHeldPackets per address', () => {
    const lookups = make({ maxHeldPackets: 3 });
    assert.equal(hold(lookups, 1), 'start');
    assert.equal(hold(lookups, 1), 'held');
    assert.equal(hold(lookups, 1), 'held');
    assert.equal(hold(lookups, 1), 'hold_overflow');
    assert.equal(lookups.settle('192.0.2.1|1', 'found', 0)?.packets.length, 3);
  });

  test('the default hold is 16 packets', () => {
    const lookups = make();
    assert.equal(hold(lookups, 1), 'start');
    for (let i = 1; i < 16; i++) assert.equal(hold(lookups, 1), 'held');
    assert.equal(hold(lookups, 1), 'hold_overflow');
  });

  test('redis_busy: at most maxConcurrent lookups in flight', () => {
    const lookups = make({ maxConcurrent: 2 });
    assert.equal(hold(lookups, 1), 'start');
    assert.equal(hold(lookups, 2), 'start');
    assert.equal(hold(lookups, 3), 'redis_busy');
    // Packets for lookups already under way still wait.
    assert.equal(hold(lookups, 1), 'held');
    lookups.settle('192.0.2.1|2', 'error', 0);
    assert.equal(hold(lookups, 3), 'start');
  });

  test('rate_limited: lookups per source IP per second, whatever the port', () => {
    const lookups = make({ lookupsPerSourcePerSecond: 2 });
    assert.equal(hold(lookups, 1, 0), 'start');
    assert.equal(hold(lookups, 2, 0), 'start');
    assert.equal(hold(lookups, 3, 0), 'rate_limited');
    assert.equal(hold(lookups, 3, 0, packet(0), '192.0.2.2'), 'start');
    assert.equal(hold(lookups, 3, 1000), 'start');
  });

  test('a miss is remembered for negativeCacheMs; an error is not', () => {
    const lookups = make({ negativeCacheMs: 5_000 });
    assert.equal(hold(lookups, 1, 0), 'start');
    lookups.settle('192.0.2.1|1', 'miss', 100);
    assert.equal(hold(lookups, 1, 200), 'redis_miss');
    assert.equal(hold(lookups, 1, 5_099), 'redis_miss');
    assert.equal(hold(lookups, 1, 5_100), 'start');
    lookups.settle('192.0.2.1|1', 'error', 5_200);
    assert.equal(hold(lookups, 1, 5_300), 'start');
    lookups.settle('192.0.2.1|1', 'found', 5_400);
    assert.equal(hold(lookups, 1, 5_500), 'start');
  });

  test('negativeCacheMs 0 disables the negative cache', () => {
    const lookups = make({ negativeCacheMs: 0 });
    hold(lookups, 1, 0);
    lookups.settle('192.0.2.1|1', 'miss', 0);
    assert.equal(hold(lookups, 1, 0), 'start');
  });

  test('the negative cache is bounded and swept', () => {
    const lookups = make({ negativeCacheMs: 1_000, maxNegativeEntries: 2 });
    for (const port of [1, 2, 3]) {
      assert.equal(hold(lookups, port, 0), 'start');
      lookups.settle(`192.0.2.1|${port}`, 'miss', 0);
    }
    assert.equal(hold(lookups, 1, 10), 'redis_miss');
    assert.equal(hold(lookups, 2, 10), 'redis_miss');
    assert.equal(hold(lookups, 3, 10), 'start', 'no room was left to remember the third miss');
    // Once entries expire, a full cache makes room.
    lookups.settle('192.0.2.1|3', 'miss', 1_000);
    assert.equal(hold(lookups, 3, 1_001), 'redis_miss');
    lookups.sweep(5_000);
    assert.equal(hold(lookups, 3, 5_000), 'start');
  });

  test('sweep also ends rate-limit windows', () => {
    const lookups = make({ lookupsPerSourcePerSecond: 1 });
    assert.equal(hold(lookups, 1, 0), 'start');
    assert.equal(hold(lookups, 2, 10), 'rate_limited');
    lookups.sweep(1_000);
    assert.equal(hold(lookups, 2, 1_000), 'start');
  });

  test('a flood of distinct addresses is bounded by maxConcurrent', () => {
    const lookups = make({ maxConcurrent: 8, lookupsPerSourcePerSecond: 1 });
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const outcome = lookups.hold(`${address}|9`, address, 4, 9, 0, packet(i & 255), 0);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(outcomes), { start: 8, redis_busy: 9_992 });
    assert.equal(lookups.inFlight, 8);
  });
});
