import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dominantFrequency, rms, sine } from './tone.ts';

describe('sine', () => {
  test('has the length, level and phase continuity asked for', () => {
    const tone = sine(440, 16000, 20);
    assert.equal(tone.length, 640);
    assert.ok(Math.abs(rms(tone) - 0.5 / Math.SQRT2) < 0.01);
    const whole = sine(440, 16000, 40);
    const joined = Buffer.concat([sine(440, 16000, 20), sine(440, 16000, 20, 0.5, 320)]);
    assert.deepEqual(joined, whole);
  });
});

describe('dominantFrequency', () => {
  for (const [frequency, rate] of [
    [440, 8000],
    [440, 16000],
    [1000, 24000],
    [250, 48000],
  ] as const) {
    test(`finds ${frequency} Hz at ${rate} Hz`, () => {
      assert.ok(Math.abs(dominantFrequency(sine(frequency, rate, 500), rate) - frequency) < 1);
    });
  }

  test('ignores low-level noise around zero crossings', () => {
    const tone = sine(440, 16000, 500, 0.3);
    let seed = 1;
    for (let i = 0; i < tone.length; i += 2) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const noise = ((seed % 1001) - 500) * 2; // ±1000 of ±9830
      tone.writeInt16LE(Math.max(-32768, Math.min(32767, tone.readInt16LE(i) + noise)), i);
    }
    assert.ok(Math.abs(dominantFrequency(tone, 16000) - 440) < 5);
  });

  test('is 0 for silence and for too little signal', () => {
    assert.equal(dominantFrequency(Buffer.alloc(640), 16000), 0);
    assert.equal(dominantFrequency(Buffer.alloc(2), 16000), 0);
    assert.equal(rms(Buffer.alloc(640)), 0);
    assert.equal(rms(Buffer.alloc(0)), 0);
  });
});
