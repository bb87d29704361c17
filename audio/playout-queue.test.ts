import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PlayoutQueue } from './playout-queue.ts';

const RATE = 16000;
const FRAME = 640; // 20 ms at 16 kHz

/** `ms` of PCM whose bytes count up from `from`, so any reordering or loss shows. */
function ramp(ms: number, from = 0): Buffer {
  const pcm = Buffer.alloc((ms * RATE * 2) / 1000);
  for (let i = 0; i < pcm.length; i++) pcm[i] = (from + i) & 0xff;
  return pcm;
}

describe('PlayoutQueue', () => {
  test('cuts any even-length chunks into 20 ms frames, in order, keeping the remainder', () => {
    const queue = new PlayoutQueue(RATE);
    const audio = ramp(100);
    queue.enqueue(audio.subarray(0, 1000)); // 31.25 ms
    queue.enqueue(audio.subarray(1000, 1002));
    queue.enqueue(audio.subarray(1002));
    assert.equal(queue.queuedMs, 100);
    const out: Buffer[] = [];
    for (let i = 0; i < 5; i++) out.push(queue.next().frame!);
    assert.deepEqual(Buffer.concat(out), audio);
    assert.equal(queue.queuedMs, 0);
    assert.deepEqual(queue.next(), { frame: undefined, marksReached: [] });
  });

  test('rejects an odd number of bytes (half a sample)', () => {
    const queue = new PlayoutQueue(RATE);
    assert.throws(() => queue.enqueue(Buffer.alloc(641)), RangeError);
    assert.equal(queue.queuedMs, 0);
  });

  test('copies what it queues (the caller may reuse its buffer)', () => {
    const queue = new PlayoutQueue(RATE);
    const chunk = ramp(40);
    queue.enqueue(chunk);
    chunk.fill(0);
    assert.deepEqual(queue.next().frame, ramp(20));
  });

  test('a partial frame left at the end goes out padded with silence', () => {
    const queue = new PlayoutQueue(RATE);
    queue.enqueue(ramp(30));
    assert.deepEqual(queue.next().frame, ramp(20));
    const last = queue.next().frame!;
    assert.equal(last.length, FRAME);
    assert.deepEqual(last.subarray(0, 320), ramp(10, 640));
    assert.deepEqual(last.subarray(320), Buffer.alloc(320));
    assert.equal(queue.next().frame, undefined);
  });

  test('a mark is reached with the frame that completes the audio queued before it', () => {
    const queue = new PlayoutQueue(RATE);
    queue.enqueue(ramp(40));
    queue.mark('a');
    queue.enqueue(ramp(10));
    queue.mark('b'); // at 50 ms: mid-frame
    queue.mark('c');
    queue.enqueue(ramp(30));
    assert.equal(queue.pendingMarks, 3);
    assert.deepEqual(queue.next().marksReached, []);
    assert.deepEqual(queue.next().marksReached, ['a']);
    assert.deepEqual(queue.next().marksReached, ['b', 'c']);
    assert.deepEqual(queue.next().marksReached, []);
    assert.equal(queue.pendingMarks, 0);
  });

  test('a mark on an empty queue is reached on the next tick', () => {
    const queue = new PlayoutQueue(RATE);
    queue.mark('now');
    assert.deepEqual(queue.next(), { frame: undefined, marksReached: ['now'] });
  });

  test('clear drops everything at once and hands back the pending marks', () => {
    const queue = new PlayoutQueue(RATE);
    queue.enqueue(ramp(1000));
    queue.mark('sentence-1');
    queue.enqueue(ramp(510));
    queue.mark('sentence-2');
    queue.next();
    assert.deepEqual(queue.clear(), ['sentence-1', 'sentence-2']);
    assert.equal(queue.queuedMs, 0);
    assert.equal(queue.pendingMarks, 0);
    assert.deepEqual(queue.next(), { frame: undefined, marksReached: [] }, 'marks are not answered twice');
    assert.deepEqual(queue.clear(), []);
    // The stream goes on after a clear: new audio and marks behave as before.
    queue.enqueue(ramp(20));
    queue.mark('after');
    assert.deepEqual(queue.next(), { frame: ramp(20), marksReached: ['after'] });
  });

  test('beyond the maximum duration the oldest audio is dropped and its marks count as passed', () => {
    const queue = new PlayoutQueue(RATE, { maxDurationMs: 100 });
    queue.enqueue(ramp(20));
    queue.mark('early');
    assert.equal(queue.enqueue(ramp(60, 640)), 0);
    assert.equal(queue.enqueue(ramp(70, 640 * 4)), 60, '150 ms queued: three oldest frames go');
    assert.equal(queue.queuedMs, 90);
    const tick = queue.next();
    assert.deepEqual(tick.marksReached, ['early']);
    assert.deepEqual(tick.frame, ramp(20, 640 * 3), 'playback resumes with the fourth frame');
  });

  test('property: frames out match a byte-queue model, for any chunking and tick pattern', () => {
    const step = fc.oneof(
      fc.integer({ min: 0, max: 1500 }).map((samples) => ({ enqueueBytes: samples * 2 })),
      fc.constant({ enqueueBytes: -1 }), // a tick
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const queue = new PlayoutQueue(RATE);
        let model = Buffer.alloc(0);
        let counter = 0;
        for (const { enqueueBytes } of steps) {
          if (enqueueBytes >= 0) {
            const chunk = ramp((enqueueBytes * 1000) / (RATE * 2), counter);
            counter += enqueueBytes;
            queue.enqueue(chunk);
            model = Buffer.concat([model, chunk]);
          } else {
            const expected = model.length === 0 ? undefined : Buffer.alloc(FRAME);
            model.copy(expected ?? Buffer.alloc(0), 0, 0, FRAME);
            model = model.subarray(Math.min(FRAME, model.length));
            assert.deepEqual(queue.next().frame, expected);
          }
          assert.equal(queue.queuedMs, (model.length * 1000) / (RATE * 2));
        }
      }),
    );
  });
});
