import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { JitterBuffer, type JitterBufferOutput, sequenceDelta } from './jitter-buffer.ts';

function payload(sequence: number): Buffer {
  return Buffer.from([sequence >> 8, sequence & 0xff]);
}

/** Pushes `sequence` at `atMs` with a payload naming it and the matching 48 kHz timestamp. */
function push(buffer: JitterBuffer, sequence: number, atMs: number): void {
  buffer.push(sequence & 0xffff, (sequence * 960) >>> 0, payload(sequence & 0xffff), atMs);
}

function describeOutput(output: JitterBufferOutput | undefined): string {
  if (output === undefined) return '-';
  return output.kind === 'lost' ? `lost ${output.sequenceNumber}` : `${output.sequenceNumber}`;
}

/** Pops at every tick from `fromMs` (inclusive) to `toMs` (exclusive), 20 ms apart. */
function popTicks(buffer: JitterBuffer, fromMs: number, toMs: number): string[] {
  const out: string[] = [];
  for (let t = fromMs; t < toMs; t += 20) out.push(describeOutput(buffer.pop(t)));
  return out;
}

describe('sequenceDelta', () => {
  test('is signed and wraps at 2^16', () => {
    assert.equal(sequenceDelta(5, 3), 2);
    assert.equal(sequenceDelta(3, 5), -2);
    assert.equal(sequenceDelta(2, 65534), 4);
    assert.equal(sequenceDelta(65534, 2), -4);
    assert.equal(sequenceDelta(0x8000, 0), -32768);
  });
});

describe('JitterBuffer', () => {
  test('plays in order one frame per tick, the target delay after the first arrival', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40 });
    assert.equal(buffer.pop(0), undefined, 'nothing before the first packet');
    for (let i = 0; i < 5; i++) push(buffer, 100 + i, 10 + 20 * i);
    // First packet at 10 ms: playout from 50 ms, so the ticks at 0..40 return nothing.
    assert.deepEqual(popTicks(buffer, 0, 120), ['-', '-', '-', '100', '101', '102']);
    const frame = buffer.pop(120);
    assert.deepEqual(frame, {
      kind: 'frame',
      payload: payload(103),
      sequenceNumber: 103,
      timestamp: 103 * 960,
    });
  });

  test('reorders within the target delay', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40 });
    for (const [sequence, at] of [
      [1, 0],
      [3, 15],
      [2, 25],
      [5, 55],
      [4, 58],
    ] as const) {
      push(buffer, sequence, at);
    }
    assert.deepEqual(popTicks(buffer, 40, 140), ['1', '2', '3', '4', '5']);
    assert.equal(buffer.counters.lost, 0);
  });

  test('a packet reordered before the first one still plays first', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40 });
    push(buffer, 11, 0);
    push(buffer, 10, 5);
    push(buffer, 12, 20);
    assert.deepEqual(popTicks(buffer, 40, 100), ['10', '11', '12']);
    assert.equal(buffer.counters.late, 0);
    // Once playout has begun, the same thing is a late packet.
    push(buffer, 9, 100);
    assert.equal(buffer.counters.late, 1);
  });

  test('drops duplicates and counts them', () => {
    const buffer = new JitterBuffer();
    push(buffer, 7, 0);
    push(buffer, 7, 1);
    push(buffer, 8, 20);
    push(buffer, 8, 21);
    assert.deepEqual(popTicks(buffer, 40, 80), ['7', '8']);
    assert.equal(buffer.counters.duplicate, 2);
    assert.equal(buffer.counters.received, 4);
  });

  test('a missing packet with later ones waiting is lost; arriving afterwards it is late', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40 });
    push(buffer, 1, 0);
    push(buffer, 3, 40);
    push(buffer, 4, 60);
    assert.deepEqual(popTicks(buffer, 40, 100), ['1', 'lost 2', '3']);
    push(buffer, 2, 100);
    assert.deepEqual(popTicks(buffer, 100, 120), ['4']);
    assert.deepEqual(buffer.counters, {
      received: 4,
      lost: 1,
      late: 1,
      duplicate: 0,
      dropped: 0,
      underruns: 0,
      resyncs: 0,
    });
  });

  test('crosses the 16-bit sequence wrap', () => {
    const buffer = new JitterBuffer();
    for (let i = 0; i < 8; i++) push(buffer, 65532 + i, 20 * i);
    assert.deepEqual(popTicks(buffer, 40, 200), ['65532', '65533', '65534', '65535', '0', '1', '2', '3']);
  });

  test('on underrun it waits for the delayed packet instead of skipping it, and rebuffers', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40 });
    push(buffer, 1, 0);
    push(buffer, 2, 20);
    assert.deepEqual(popTicks(buffer, 40, 100), ['1', '2', '-']);
    assert.equal(buffer.counters.underruns, 1);
    push(buffer, 3, 105); // 3 was delayed, not lost: it plays 40 ms after it arrived
    assert.deepEqual(popTicks(buffer, 100, 180), ['-', '-', '-', '3']);
    assert.equal(buffer.counters.lost, 0);
    assert.equal(buffer.counters.underruns, 1);
  });

  test('a packet too far ahead moves playout up to it, keeping the target delay', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40, maxDelayMs: 200 });
    for (let i = 0; i < 5; i++) push(buffer, i, 0);
    push(buffer, 20, 0); // 20 frames (400 ms) ahead of playout: past maxDelayMs, short of a resync
    assert.equal(buffer.size, 1, 'only 19 and 20 could be held, and 19 never came');
    assert.deepEqual(popTicks(buffer, 40, 100), ['lost 19', '20', '-']);
    assert.equal(buffer.counters.dropped, 5);
    assert.equal(buffer.counters.lost, 14 + 1, '5…18 passed over, then 19 found missing');
    assert.equal(buffer.counters.resyncs, 0);
  });

  test('a big jump either way is a new stream', () => {
    const buffer = new JitterBuffer({ resyncAfterMs: 1000 });
    push(buffer, 10, 0);
    push(buffer, 11, 0);
    push(buffer, 30_000, 10);
    assert.equal(buffer.counters.resyncs, 1);
    assert.equal(buffer.counters.dropped, 2);
    assert.deepEqual(popTicks(buffer, 20, 80), ['-', '-', '30000']);
    push(buffer, 29_000, 80); // 50+ frames back: not a late packet, a restart
    assert.equal(buffer.counters.resyncs, 2);
    assert.equal(buffer.counters.late, 0);
    assert.deepEqual(popTicks(buffer, 80, 140), ['-', '-', '29000']);
  });

  test('a long run of late packets is a sender that went back: resync', () => {
    const buffer = new JitterBuffer();
    for (let i = 0; i < 10; i++) push(buffer, 1000 + i, 20 * i);
    popTicks(buffer, 40, 240);
    for (let i = 0; i < 30; i++) push(buffer, 980 + i, 240 + 20 * i); // 980…1009 are all behind
    assert.equal(buffer.counters.late, 24);
    assert.equal(buffer.counters.resyncs, 1);
  });

  test('excess delay after a burst is trimmed within about a second', () => {
    const buffer = new JitterBuffer({ targetDelayMs: 40, maxDelayMs: 400 });
    // A 140 ms freeze then a burst: 8 packets arrive together, and the stream goes on steadily.
    push(buffer, 0, 0);
    assert.deepEqual(popTicks(buffer, 40, 180), ['0', '-', '-', '-', '-', '-', '-']);
    for (let i = 1; i <= 8; i++) push(buffer, i, 165);
    let sequence = 9;
    let trimmedAtMs: number | undefined;
    for (let t = 180; t < 1600; t += 20) {
      push(buffer, sequence++, t - 5);
      const out = buffer.pop(t);
      if (t === 220) assert.equal(out?.sequenceNumber, 1, 'playout resumes 40 ms after the burst');
      if (t === 220) assert.equal(buffer.size, 10, '200 ms buffered where 40 would do');
      if (buffer.counters.dropped > 0) trimmedAtMs ??= t;
    }
    assert.equal(trimmedAtMs, 220 + 49 * 20, 'trimmed on the 50th tick with excess (one second)');
    assert.equal(buffer.counters.dropped, 11 - (buffer.targetFrames + 1));
    assert.ok(buffer.size <= buffer.targetFrames + 1, `${buffer.size} frames still buffered`);
    assert.equal(buffer.counters.lost, 0);
  });

  // Random network: each packet delayed by 0-120 ms, some lost, some duplicated, some delivered very
  // late, a random first sequence number (so runs cross the wrap), a tick every 20 ms.
  test('property: ordered output, at most one per tick, bounded memory, every packet accounted for', () => {
    const packetFate = fc.record({
      delayMs: fc.integer({ min: 0, max: 120 }),
      lost: fc.integer({ min: 0, max: 19 }).map((n) => n === 0), // 5 %
      duplicated: fc.boolean(),
      extraDelayMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 600 })),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(packetFate, { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 5 }).map((frames) => frames * 20),
        (firstSequence, fates, targetDelayMs) => {
          const buffer = new JitterBuffer({ targetDelayMs, maxDelayMs: 200 });
          const arrivals: { atMs: number; sequence: number }[] = [];
          fates.forEach((fate, i) => {
            if (fate.lost) return;
            const sequence = (firstSequence + i) & 0xffff;
            const atMs = 20 * i + fate.delayMs + fate.extraDelayMs;
            arrivals.push({ atMs, sequence });
            if (fate.duplicated) arrivals.push({ atMs: atMs + 3, sequence });
          });
          arrivals.sort((a, b) => a.atMs - b.atMs);
          let ticks = 0;
          let played = 0;
          let lastOut: number | undefined;
          let resyncsAtLastOut = 0;
          const playedSequences = new Set<number>();
          let next = 0;
          const lastArrivalMs = arrivals.at(-1)?.atMs ?? 0;
          const endMs = lastArrivalMs + targetDelayMs + 20 * (buffer.capacityFrames + 2);
          for (let t = 0; t < endMs; t += 20) {
            while (next < arrivals.length && arrivals[next]!.atMs <= t) {
              const { sequence, atMs } = arrivals[next++]!;
              buffer.push(sequence, sequence * 960, payload(sequence), atMs);
              assert.ok(buffer.size <= buffer.capacityFrames);
            }
            ticks++;
            const out = buffer.pop(t);
            if (out === undefined) continue;
            if (out.kind === 'frame') {
              played++;
              assert.deepEqual(out.payload, payload(out.sequenceNumber));
              assert.ok(!playedSequences.has(out.sequenceNumber), 'each packet plays once');
              playedSequences.add(out.sequenceNumber);
            }
            if (lastOut !== undefined && buffer.counters.resyncs === resyncsAtLastOut) {
              assert.ok(sequenceDelta(out.sequenceNumber, lastOut) > 0, 'in sequence order');
            }
            lastOut = out.sequenceNumber;
            resyncsAtLastOut = buffer.counters.resyncs;
          }
          const c = buffer.counters;
          assert.ok(played + c.lost <= ticks);
          assert.equal(c.received, arrivals.length);
          assert.equal(c.received, played + c.late + c.duplicate + c.dropped + buffer.size);
          assert.equal(buffer.size, 0, 'everything drained by the end');
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: jitter below the target delay loses nothing and plays every packet in turn', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(fc.integer({ min: 0, max: 39 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 0, max: 19 }),
        (firstSequence, delaysMs, tickPhaseMs) => {
          const buffer = new JitterBuffer({ targetDelayMs: 40 });
          const arrivals = delaysMs
            .map((delayMs, i) => ({ atMs: 20 * i + delayMs, sequence: (firstSequence + i) & 0xffff }))
            .sort((a, b) => a.atMs - b.atMs);
          const played: number[] = [];
          let next = 0;
          for (let t = tickPhaseMs; played.length < delaysMs.length; t += 20) {
            while (next < arrivals.length && arrivals[next]!.atMs <= t) {
              const { sequence, atMs } = arrivals[next++]!;
              buffer.push(sequence, 0, payload(sequence), atMs);
            }
            const out = buffer.pop(t);
            if (out?.kind === 'lost') assert.fail(`lost ${out.sequenceNumber}`);
            if (out?.kind === 'frame') played.push(out.sequenceNumber);
            assert.ok(t < 20 * delaysMs.length + 200, 'playout keeps up');
          }
          assert.deepEqual(
            played,
            delaysMs.map((_, i) => (firstSequence + i) & 0xffff),
          );
          assert.equal(buffer.counters.late + buffer.counters.dropped + buffer.counters.underruns, 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
