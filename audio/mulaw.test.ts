import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeMulawSample, encodeMulawSample, mulawToPcm16, pcm16ToMulaw } from './mulaw.ts';

describe('G.711 μ-law', () => {
  test('known codes: silence, full scale, the segment ends', () => {
    assert.equal(encodeMulawSample(0), 0xff);
    assert.equal(encodeMulawSample(32767), 0x80);
    assert.equal(encodeMulawSample(-32768), 0x00);
    assert.equal(decodeMulawSample(0xff), 0);
    assert.equal(decodeMulawSample(0x7f), 0);
    assert.equal(decodeMulawSample(0x80), 32124);
    assert.equal(decodeMulawSample(0x00), -32124);
    // The first segment's steps are 8 (in 16-bit units), the last one's 1024.
    assert.equal(decodeMulawSample(0xfe) - decodeMulawSample(0xff), 8);
    assert.equal(decodeMulawSample(0x80) - decodeMulawSample(0x81), 1024);
  });

  test('every code survives decode → encode; decoding is monotonic', () => {
    for (let code = 0; code < 256; code++) {
      if (code === 0x7f) continue; // negative zero decodes to 0, which encodes as positive zero
      assert.equal(encodeMulawSample(decodeMulawSample(code)), code, `code ${code.toString(16)}`);
    }
    for (let code = 0x81; code <= 0xff; code++) {
      assert.ok(decodeMulawSample(code) < decodeMulawSample(code - 1), `code ${code.toString(16)}`);
    }
  });

  test('the error is proportional to the level (companding): at most one step of its segment', () => {
    for (let sample = -32768; sample < 32768; sample += 7) {
      const error = Math.abs(decodeMulawSample(encodeMulawSample(sample)) - sample);
      const magnitude = Math.min(Math.abs(sample), 32124);
      const clipped = Math.abs(sample) - magnitude;
      // A segment's step is 1/16 of its start (biased by 132), 8 in the first segment, 1024 in the last;
      // +4 for the two low bits G.711 ignores.
      assert.ok(error <= (magnitude + 132) / 16 + 4 + clipped, `${sample}: error ${error}`);
    }
  });

  test('a speech-level tone keeps ~38 dB signal-to-noise through a round trip', () => {
    const samples = 8000;
    const pcm = Buffer.alloc(samples * 2);
    for (let i = 0; i < samples; i++)
      pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
    const mulaw = pcm16ToMulaw(pcm);
    assert.equal(mulaw.length, samples);
    const back = mulawToPcm16(mulaw);
    assert.equal(back.length, pcm.length);
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < samples; i++) {
      const a = pcm.readInt16LE(i * 2);
      signal += a * a;
      noise += (a - back.readInt16LE(i * 2)) ** 2;
    }
    const snr = 10 * Math.log10(signal / noise);
    assert.ok(snr > 35 && snr < 45, `SNR ${snr.toFixed(1)} dB`);
  });

  test('buffers: unaligned views work; an odd PCM length is refused', () => {
    const backing = Buffer.alloc(9);
    const view = backing.subarray(1); // odd byteOffset
    view.writeInt16LE(-1000, 0);
    view.writeInt16LE(1000, 2);
    const codes = pcm16ToMulaw(view);
    assert.equal(codes.length, 4);
    assert.equal(codes[0], encodeMulawSample(-1000));
    assert.equal(codes[1], encodeMulawSample(1000));
    assert.throws(() => pcm16ToMulaw(Buffer.alloc(3)), RangeError);
    assert.equal(mulawToPcm16(Buffer.alloc(0)).length, 0);
  });
});
