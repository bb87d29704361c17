import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue } from './work-queue.ts';

const backoff = { initialMs: 20, maxMs: 80 };

describe('WorkQueue', () => {
  it('queues a key once however often it is added', async () => {
    const queue = new WorkQueue({ backoff });
    for (let i = 0; i < 5; i++) queue.add('a');
    queue.add('b');
    assert.equal(queue.length, 2);
    const seen: string[] = [];
    const running = queue.run(
      2,
      async (key) => {
        seen.push(key);
        return undefined;
      },
      assert.fail,
    );
    await sleep(20);
    queue.shutdown();
    await running;
    assert.deepEqual(seen.toSorted(), ['a', 'b']);
  });

  it('never reconciles one key twice at once, and runs it again if it changed meanwhile', async () => {
    const queue = new WorkQueue({ backoff });
    let inFlight = 0;
    let maxInFlight = 0;
    let runs = 0;
    queue.add('a');
    const running = queue.run(
      4,
      async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        runs++;
        if (runs === 1) {
          queue.add('a');
          queue.add('a');
        }
        await sleep(10);
        inFlight--;
        return undefined;
      },
      assert.fail,
    );
    await sleep(80);
    queue.shutdown();
    await running;
    assert.equal(maxInFlight, 1);
    assert.equal(runs, 2);
  });

  it('retries a failing key with growing delays and forgets them after a success', async () => {
    const queue = new WorkQueue({ backoff });
    const times: number[] = [];
    const errors: unknown[] = [];
    queue.add('a');
    const running = queue.run(
      1,
      async () => {
        times.push(Date.now());
        if (times.length <= 3) throw new Error(`failure ${times.length}`);
        return undefined;
      },
      (_key, error) => errors.push(error),
    );
    await sleep(400);
    queue.shutdown();
    await running;
    assert.equal(times.length, 4);
    assert.equal(errors.length, 3);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Equal jitter (runtime/backoff.ts): the n-th retry waits between half and all of 20·2^(n-1) ms.
    assert.ok(gaps[0]! >= 9 && gaps[1]! >= 19 && gaps[2]! >= 39, `gaps ${gaps}`);
    assert.equal(queue.addRateLimited('a') <= 24, true, 'the backoff starts again after a success');
  });

  it('keeps the earliest of several addAfter calls, and a requeueAfter outcome', async () => {
    const queue = new WorkQueue({ backoff });
    const started = Date.now();
    const times: number[] = [];
    queue.addAfter('a', 200);
    queue.addAfter('a', 30);
    queue.addAfter('a', 100);
    const running = queue.run(
      1,
      async () => {
        times.push(Date.now() - started);
        return times.length === 1 ? { requeueAfterMs: 40 } : undefined;
      },
      assert.fail,
    );
    await sleep(300);
    queue.shutdown();
    await running;
    assert.equal(times.length, 2, `ran at ${times}`);
    assert.ok(times[0]! >= 25 && times[0]! < 100);
    assert.ok(times[1]! - times[0]! >= 35);
  });

  it('stops handing out keys at shutdown and drops its timers', async () => {
    const queue = new WorkQueue({ backoff });
    let runs = 0;
    queue.addAfter('later', 50);
    const running = queue.run(
      1,
      async () => {
        runs++;
        return undefined;
      },
      assert.fail,
    );
    queue.shutdown();
    await running;
    queue.add('x');
    await sleep(80);
    assert.equal(runs, 0);
  });
});
