import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pacer, type PacerClock, PaceSchedule } from './pacer.ts';

/** A manual clock: timers fire only when the test advances time, optionally late. */
class FakeClock implements PacerClock {
  nowMs = 1000;
  #timers = new Map<number, { atMs: number; callback: () => void }>();
  #nextId = 1;
  /** Extra delay added to each timer, like a loaded event loop. */
  lateness: () => number = () => 0;

  now(): number {
    return this.nowMs;
  }
  setTimer(callback: () => void, delayMs: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { atMs: this.nowMs + Math.max(1, delayMs) + this.lateness(), callback });
    return id;
  }
  clearTimer(timer: unknown): void {
    this.#timers.delete(timer as number);
  }
  get pendingTimers(): number {
    return this.#timers.size;
  }
  /** Runs every timer due up to `nowMs + ms`, in order, moving the clock to each. */
  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      const next = [...this.#timers.entries()].sort((a, b) => a[1].atMs - b[1].atMs)[0];
      if (next === undefined || next[1].atMs > endMs) break;
      this.#timers.delete(next[0]);
      this.nowMs = Math.max(this.nowMs, next[1].atMs);
      next[1].callback();
    }
    this.nowMs = endMs;
  }
}

describe('PaceSchedule', () => {
  test('the first tick is due at the start, then one per interval on a fixed grid', () => {
    const schedule = new PaceSchedule(100);
    assert.deepEqual(schedule.due(99.9), { tickTimesMs: [], skipped: 0 });
    assert.deepEqual(schedule.due(100), { tickTimesMs: [100], skipped: 0 });
    assert.deepEqual(schedule.due(119.9), { tickTimesMs: [], skipped: 0 });
    assert.equal(schedule.nextDeadlineMs, 120);
    assert.deepEqual(schedule.due(123), { tickTimesMs: [120], skipped: 0 });
    assert.deepEqual(schedule.due(161), { tickTimesMs: [140, 160], skipped: 0 }, 'late wakes catch up');
    assert.equal(schedule.nextDeadlineMs, 180);
  });

  test('after a stall it runs at most maxCatchUpTicks, the most recent ones, and skips the rest', () => {
    const schedule = new PaceSchedule(0, { maxCatchUpTicks: 3 });
    schedule.due(0);
    assert.deepEqual(schedule.due(205), { tickTimesMs: [160, 180, 200], skipped: 7 });
    assert.equal(schedule.nextDeadlineMs, 220, 'the grid is kept');
    assert.deepEqual(schedule.due(220), { tickTimesMs: [220], skipped: 0 });
  });

  test('a clock that went backwards yields nothing', () => {
    const schedule = new PaceSchedule(50);
    schedule.due(60);
    assert.deepEqual(schedule.due(10), { tickTimesMs: [], skipped: 0 });
  });
});

describe('Pacer (fake clock)', () => {
  test('ticks on the grid however late the timer fires, without drift', () => {
    const clock = new FakeClock();
    let seed = 7;
    clock.lateness = () => {
      seed = (seed * 48271) % 2147483647;
      return seed % 6; // 0-5 ms late
    };
    const ticks: number[] = [];
    const pacer = new Pacer((tickMs) => ticks.push(tickMs), { clock });
    pacer.start();
    clock.advance(10_000);
    pacer.stop();
    assert.ok(ticks.length >= 500 && ticks.length <= 501, `${ticks.length} ticks in 10 s`);
    ticks.forEach((tickMs, i) => {
      assert.equal(tickMs, 1000 + 20 * i);
    });
    assert.equal(pacer.stats.skippedTicks, 0);
    assert.ok(pacer.stats.maxLatenessMs <= 6);
  });

  test('catches up at most maxCatchUpTicks after a stall, then carries on on the grid', () => {
    const clock = new FakeClock();
    const ticks: number[] = [];
    const pacer = new Pacer((tickMs) => ticks.push(tickMs), { clock, maxCatchUpTicks: 2 });
    pacer.start();
    clock.advance(40); // ticks at 1000, 1020, 1040
    clock.nowMs += 300; // the event loop is blocked: no timer runs
    clock.advance(0);
    clock.advance(25);
    pacer.stop();
    assert.deepEqual(ticks, [1000, 1020, 1040, 1320, 1340, 1360]);
    assert.equal(pacer.stats.skippedTicks, 13);
  });

  test('stop clears its timer, also when called from inside a tick, and start is idempotent', () => {
    const clock = new FakeClock();
    let count = 0;
    const pacer = new Pacer(
      () => {
        if (++count === 3) pacer.stop();
      },
      { clock },
    );
    pacer.start();
    pacer.start();
    assert.equal(clock.pendingTimers, 1);
    clock.advance(1000);
    assert.equal(count, 3);
    assert.equal(pacer.running, false);
    assert.equal(clock.pendingTimers, 0);
    pacer.start();
    assert.equal(count, 4, 'restarts with a tick at once');
    pacer.stop();
    assert.equal(clock.pendingTimers, 0);
  });

  test('stopping mid catch-up drops the remaining overdue ticks', () => {
    const clock = new FakeClock();
    const ticks: number[] = [];
    const pacer = new Pacer(
      (tickMs) => {
        ticks.push(tickMs);
        if (ticks.length === 2) pacer.stop();
      },
      { clock },
    );
    pacer.start();
    clock.nowMs += 100;
    clock.advance(0);
    assert.deepEqual(ticks, [1000, 1020]);
    assert.equal(clock.pendingTimers, 0);
  });

  test('a throwing tick does not stop the pacer', () => {
    const clock = new FakeClock();
    let count = 0;
    const pacer = new Pacer(
      () => {
        count++;
        throw new Error('tick failed');
      },
      { clock },
    );
    assert.throws(() => pacer.start(), /tick failed/);
    assert.equal(pacer.running, true);
    assert.equal(clock.pendingTimers, 1);
    assert.throws(() => clock.advance(20), /tick failed/);
    assert.equal(count, 2);
    pacer.stop();
  });
});

describe('Pacer (real timers)', () => {
  test('ticks about 50 times a second and leaves no timer behind', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const ticks: number[] = [];
    const pacer = new Pacer((tickMs) => ticks.push(tickMs));
    const startedMs = performance.now();
    pacer.start();
    await sleep(1000);
    pacer.stop();
    const elapsedMs = performance.now() - startedMs;
    const expected = Math.floor(elapsedMs / 20) + 1;
    // Loose on purpose: a loaded CI machine delays timers, and catch-up is capped.
    assert.ok(ticks.length >= expected * 0.75 && ticks.length <= expected, `${ticks.length} of ${expected}`);
    for (let i = 1; i < ticks.length; i++) {
      const steps = (ticks[i]! - ticks[0]!) / 20;
      assert.ok(Math.abs(steps - Math.round(steps)) < 1e-6, 'on the grid');
      assert.ok(ticks[i]! > ticks[i - 1]!, 'increasing');
    }
    const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(timersAfter, timersBefore);
    const count = ticks.length;
    await sleep(60);
    assert.equal(ticks.length, count, 'no tick after stop');
  });
});
