import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Encoder } from '@evan/opus';
import fc from 'fast-check';
import { frameBytes, SAMPLE_RATES, type SampleRate } from '../protocol/backend.ts';
import { OPUS_APPLICATIONS, type OpusApplication } from './opus-application.ts';
import {
  CONCEAL_FADE_FRAMES,
  OPUS_BANDWIDTHS,
  OpusFrameDecoder,
  OpusFrameEncoder,
  opusBandwidthIndex,
} from './opus-codec.ts';
import { dominantFrequency, rms, sine } from './tone.ts';

function frames(pcm: Buffer, bytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + bytes <= pcm.length; at += bytes) out.push(pcm.subarray(at, at + bytes));
  return out;
}

/** Encodes then decodes `pcm` frame by frame, dropping the first 60 ms (the codec's ramp-up). */
function roundTrip(pcm: Buffer, rate: SampleRate, application?: OpusApplication): Buffer {
  const encoder = new OpusFrameEncoder(rate, application === undefined ? {} : { application });
  const decoder = new OpusFrameDecoder(rate);
  const out = frames(pcm, frameBytes(rate)).map((frame) => decoder.decode(encoder.encode(frame)));
  return Buffer.concat(out.slice(3));
}

describe('OpusFrameEncoder → OpusFrameDecoder', () => {
  for (const application of OPUS_APPLICATIONS)
    for (const rate of SAMPLE_RATES) {
      test(`a 440 Hz tone keeps its frequency and level at ${rate} Hz (${application})`, () => {
        const decoded = roundTrip(sine(440, rate, 1000, 0.5), rate, application);
        assert.ok(
          Math.abs(dominantFrequency(decoded, rate) - 440) < 2,
          `${dominantFrequency(decoded, rate)} Hz`,
        );
        assert.ok(Math.abs(rms(decoded) - 0.5 / Math.SQRT2) < 0.1, `rms ${rms(decoded)}`);
      });
    }

  test('each application codes in its own mode, at its own bitrate (RFC 6716 §3.1: the TOC byte)', () => {
    const tone = frames(sine(440, 16000, 400, 0.3), 640);
    const packets = (application: OpusApplication) => {
      const encoder = new OpusFrameEncoder(16000, { application });
      return tone.map((frame) => encoder.encode(frame)).slice(3);
    };
    const celt = packets('restricted-lowdelay');
    // CELT-only configurations are 16–31; at 64 kb/s a 20 ms frame is 160 bytes.
    assert.ok(
      celt.every((packet) => packet[0]! >> 3 >= 16),
      'a restricted-lowdelay packet not in CELT',
    );
    const celtBytes = celt.reduce((sum, packet) => sum + packet.length, 0) / celt.length;
    assert.ok(Math.abs(celtBytes - 160) < 16, `${celtBytes} bytes a frame`);
    const silk = packets('voip');
    assert.ok(
      silk.every((packet) => packet[0]! >> 3 < 12),
      'a voip packet not in SILK at 16 kHz',
    );
    assert.ok(silk.reduce((sum, packet) => sum + packet.length, 0) / silk.length < 100);
  });

  test('the encoder takes exactly one 20 ms frame', () => {
    const encoder = new OpusFrameEncoder(16000, { bitrate: 24_000 });
    assert.equal(encoder.frameBytes, 640);
    assert.throws(() => encoder.encode(Buffer.alloc(638)), RangeError);
    assert.throws(() => encoder.encode(Buffer.alloc(1280)), RangeError);
    const packet = encoder.encode(Buffer.alloc(640));
    assert.ok(Buffer.isBuffer(packet) && packet.length > 0);
  });

  test('encoded packets do not alias each other (the binding reuses one output buffer)', () => {
    const encoder = new OpusFrameEncoder(16000);
    const first = encoder.encode(sine(440, 16000, 20));
    const copy = Buffer.from(first);
    encoder.encode(sine(1000, 16000, 20));
    assert.deepEqual(first, copy);
  });
});

describe('OpusFrameDecoder', () => {
  test('never throws on garbage: it conceals and counts', () => {
    const decoder = new OpusFrameDecoder(16000);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (payload) => {
        assert.equal(decoder.decode(payload).length, 640);
      }),
    );
    const before = decoder.stats.decodeErrors;
    assert.equal(decoder.decode(Buffer.alloc(0)).length, 640);
    assert.equal(decoder.decode(Buffer.from([0xff, 0xff, 0xff])).length, 640);
    assert.equal(decoder.stats.decodeErrors, before + 2);
    assert.ok(decoder.stats.concealed >= 2);
  });

  test('packets of other durations come out as exactly one frame (trimmed or padded)', () => {
    const rate = 16000;
    const decoder = new OpusFrameDecoder(rate);
    const raw = new Encoder({ channels: 1, sample_rate: rate, application: 'voip' });
    const tone = sine(440, rate, 40);
    const forty = decoder.decode(raw.encode(tone)); // one 40 ms packet
    assert.equal(forty.length, 640);
    const ten = decoder.decode(raw.encode(tone.subarray(0, 320))); // one 10 ms packet
    assert.equal(ten.length, 640);
    assert.ok(rms(ten.subarray(320)) === 0, 'padding is silence');
    assert.equal(decoder.stats.resized, 2);
    assert.equal(decoder.stats.decoded, 2);
  });

  test('concealment repeats the last frame fading out, then stays silent', () => {
    const rate = 16000;
    const encoder = new OpusFrameEncoder(rate);
    const decoder = new OpusFrameDecoder(rate);
    let last: Buffer = Buffer.alloc(0);
    for (const frame of frames(sine(440, rate, 200), 640)) last = decoder.decode(encoder.encode(frame));
    const levels = [rms(last)];
    for (let i = 0; i < CONCEAL_FADE_FRAMES + 2; i++) levels.push(rms(decoder.conceal()));
    for (let i = 1; i <= CONCEAL_FADE_FRAMES; i++) {
      assert.ok(levels[i]! < levels[i - 1]!, `frame ${i} is quieter than the one before: ${levels}`);
    }
    assert.ok(levels[1]! > 0.5 * levels[0]!, 'the first concealed frame is still clearly audible');
    assert.equal(levels[CONCEAL_FADE_FRAMES + 1], 0);
    assert.equal(levels[CONCEAL_FADE_FRAMES + 2], 0);
    // A good packet ends the fade: the next loss starts again from the new frame.
    decoder.decode(encoder.encode(sine(440, rate, 20)));
    assert.ok(rms(decoder.conceal()) > 0);
    assert.equal(decoder.stats.concealed, CONCEAL_FADE_FRAMES + 3);
  });

  test('concealment before anything was decoded is silence', () => {
    const decoder = new OpusFrameDecoder(8000);
    assert.deepEqual(decoder.conceal(), Buffer.alloc(320));
  });
});

describe('Opus bandwidth', () => {
  test('the TOC configuration names it (RFC 6716 §3.1, Table 2)', () => {
    const of = (config: number) => OPUS_BANDWIDTHS[opusBandwidthIndex(config << 3)];
    const expected: Record<string, number[]> = {
      narrowband: [0, 1, 2, 3, 16, 17, 18, 19],
      mediumband: [4, 5, 6, 7],
      wideband: [8, 9, 10, 11, 20, 21, 22, 23],
      superwideband: [12, 13, 24, 25, 26, 27],
      fullband: [14, 15, 28, 29, 30, 31],
    };
    for (const [bandwidth, configs] of Object.entries(expected))
      for (const config of configs) assert.equal(of(config), bandwidth, `configuration ${config}`);
    // The stereo flag and frame count code (the TOC's low 3 bits) do not change it.
    assert.equal(opusBandwidthIndex((9 << 3) | 0b111), opusBandwidthIndex(9 << 3));
  });

  test('the decoder counts what it decoded by bandwidth: a 16 kHz encoder sends wideband, 48 kHz fullband', () => {
    for (const [rate, bandwidth] of [
      [16_000, 'wideband'],
      [48_000, 'fullband'],
    ] as const) {
      const encoder = new OpusFrameEncoder(rate);
      const decoder = new OpusFrameDecoder(16_000);
      for (const frame of frames(sine(440, rate, 200, 0.3), frameBytes(rate)))
        decoder.decode(encoder.encode(frame));
      const counts = decoder.stats.decodedByBandwidth;
      assert.equal(counts[OPUS_BANDWIDTHS.indexOf(bandwidth)], 10, `${rate} Hz: ${counts}`);
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        10,
      );
    }
  });
});
