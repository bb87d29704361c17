import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sine } from '../audio/tone.ts';
import { EchoDetector, RtpReceiveStats } from './measure.ts';

describe('RtpReceiveStats', () => {
  test('nothing received: no loss or jitter figure', () => {
    const stats = new RtpReceiveStats();
    assert.equal(stats.expected, 0);
    assert.equal(stats.lossRatio, undefined);
    assert.equal(stats.jitterMs, undefined);
  });

  test('a steady stream across the sequence wrap: no loss, no jitter', () => {
    const stats = new RtpReceiveStats();
    for (let i = 0; i < 100; i++)
      stats.onPacket((65_500 + i) & 0xffff, (0xffff_f000 + i * 960) >>> 0, i * 20);
    assert.equal(stats.expected, 100);
    assert.equal(stats.lost, 0);
    assert.equal(stats.lossRatio, 0);
    assert.ok(stats.jitterMs! < 1e-9);
  });

  test('gaps count as lost; reordering and late packets do not', () => {
    const stats = new RtpReceiveStats();
    const order = [10, 11, 13, 12, 14, 17, 18, 19]; // 15 and 16 never come
    for (const [i, seq] of order.entries()) stats.onPacket(seq, seq * 960, i * 20);
    assert.equal(stats.expected, 10);
    assert.equal(stats.received, 8);
    assert.equal(stats.lost, 2);
    assert.equal(stats.lossRatio, 0.2);
  });

  test('jitter follows RFC 3550: alternating 0/10 ms lateness converges to about 10 ms', () => {
    const stats = new RtpReceiveStats();
    for (let i = 0; i < 400; i++) stats.onPacket(i, i * 960, i * 20 + (i % 2) * 10);
    assert.ok(Math.abs(stats.jitterMs! - 10) < 0.5, `jitter ${stats.jitterMs}`);
  });
});

describe('EchoDetector', () => {
  const frames = (hz: number, count: number, amplitude = 0.5) =>
    Array.from({ length: count }, (_, i) => sine(hz, 48_000, 20, amplitude, i * 960));

  test('hears the tone after three frames, timed at the first of them', () => {
    const detector = new EchoDetector({ toneHz: 440, sampleRate: 48_000 });
    const audio = [...Array.from({ length: 5 }, () => Buffer.alloc(1920)), ...frames(440, 5)];
    for (const [i, frame] of audio.entries()) detector.onFrame(frame, 1000 + i * 20);
    const heard = detector.heard;
    assert.ok(heard !== undefined);
    assert.equal(heard.atMs, 1100);
    assert.ok(Math.abs(heard.frequencyHz - 440) < 2);
    assert.ok(Math.abs(heard.level - 0.5 / Math.SQRT2) < 0.01);
  });

  test('another tone, silence, or a tone under the silence level is not the echo', () => {
    for (const audio of [
      frames(500, 10),
      Array.from({ length: 10 }, () => Buffer.alloc(1920)),
      frames(440, 10, 0.005),
    ]) {
      const detector = new EchoDetector({ toneHz: 440, sampleRate: 48_000 });
      for (const [i, frame] of audio.entries()) detector.onFrame(frame, i * 20);
      assert.equal(detector.heard, undefined);
    }
  });

  test('an interrupted run starts over', () => {
    const detector = new EchoDetector({ toneHz: 440, sampleRate: 48_000 });
    const audio = [...frames(440, 2), Buffer.alloc(1920), ...frames(440, 3)];
    for (const [i, frame] of audio.entries()) detector.onFrame(frame, i * 20);
    assert.equal(detector.heard?.atMs, 60);
  });
});
