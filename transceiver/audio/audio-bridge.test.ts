import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Decoder, Encoder } from '@evan/opus';
import { AudioBridge, type AudioBridgeTick } from './audio-bridge.ts';
import { type RtpPacketFields, TIMESTAMP_STEP } from './rtp-packetizer.ts';
import { dominantFrequency, rms, sine } from './tone.ts';

const BACKEND_RATE = 16000;
const BACKEND_FRAME = 640;

/** What a browser sends: 48 kHz mono Opus, one packet per 20 ms. */
function callerPackets(pcm48k: Buffer): Buffer[] {
  const encoder = new Encoder({ channels: 1, sample_rate: 48000, application: 'voip' });
  const packets: Buffer[] = [];
  for (let at = 0; at + 1920 <= pcm48k.length; at += 1920) {
    packets.push(Buffer.from(encoder.encode(pcm48k.subarray(at, at + 1920))));
  }
  return packets;
}

/** What a browser hears: the packets decoded at 48 kHz. */
function decodeAtCaller(packets: RtpPacketFields[]): Buffer {
  const decoder = new Decoder({ channels: 1, sample_rate: 48000 });
  return Buffer.concat(packets.map((packet) => Buffer.from(decoder.decode(packet.payload))));
}

/** A deterministic pseudo-random generator, so failures reproduce. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48271) % 2147483647;
    return state / 2147483647;
  };
}

function runTicks(bridge: AudioBridge, fromMs: number, count: number): AudioBridgeTick[] {
  return Array.from({ length: count }, (_, i) => bridge.tick(fromMs + 20 * i));
}

describe('AudioBridge: caller → backend', () => {
  test('a 440 Hz tone arrives as 16 kHz PCM at 440 Hz through jitter and reordering', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE, jitterBuffer: { targetDelayMs: 60 } });
    const packets = callerPackets(sine(440, 48000, 2000));
    const rand = random(42);
    const arrivals = packets
      .map((payload, i) => ({ atMs: 20 * i + rand() * 40, sequence: (65500 + i) & 0xffff, payload }))
      .sort((a, b) => a.atMs - b.atMs);
    const toBackend: Buffer[] = [];
    let next = 0;
    for (let t = 0; t < 20 * packets.length + 200; t += 20) {
      while (next < arrivals.length && arrivals[next]!.atMs <= t) {
        const { sequence, payload, atMs } = arrivals[next++]!;
        bridge.onRtp(sequence, (sequence * TIMESTAMP_STEP) >>> 0, payload, atMs);
      }
      toBackend.push(...bridge.tick(t).toBackend);
    }
    assert.ok(toBackend.every((frame) => frame.length === BACKEND_FRAME));
    const stats = bridge.stats;
    assert.equal(stats.rtpReceived, packets.length);
    assert.equal(stats.lost + stats.late + stats.dropped, 0, JSON.stringify(stats));
    const voiced = Buffer.concat(toBackend.slice(3, packets.length - 3));
    assert.ok(Math.abs(dominantFrequency(voiced, BACKEND_RATE) - 440) < 2);
    assert.ok(rms(voiced) > 0.25);
  });

  test('losses are concealed: the backend still gets a frame every tick, and the tone', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const packets = callerPackets(sine(440, 48000, 2000));
    const toBackend: Buffer[] = [];
    packets.forEach((payload, i) => {
      if (i % 10 !== 5) bridge.onRtp(i, i * TIMESTAMP_STEP, payload, 20 * i);
      toBackend.push(...bridge.tick(20 * i).toBackend);
    });
    assert.equal(toBackend.length, packets.length - 2, 'one frame per tick after the 40 ms start');
    assert.equal(bridge.stats.lost, 10);
    assert.equal(bridge.stats.concealedFrames, 10);
    assert.ok(Math.abs(dominantFrequency(Buffer.concat(toBackend.slice(3)), BACKEND_RATE) - 440) < 15);
  });

  test('garbage payloads and a silent caller do not break the stream', () => {
    const bridge = new AudioBridge({ sampleRate: 8000 });
    assert.deepEqual(bridge.tick(0).toBackend, [], 'nothing before the caller starts');
    bridge.onRtp(1, 0, Buffer.from([0xff, 0xff, 0xff]), 0);
    bridge.onRtp(2, 960, Buffer.alloc(0), 0);
    const frames = runTicks(bridge, 40, 10).flatMap((tick) => tick.toBackend);
    assert.equal(frames.length, 10, 'concealment fills the ticks after the caller went quiet');
    assert.ok(frames.every((frame) => frame.length === 320 && rms(frame) === 0));
    assert.equal(bridge.stats.decodeErrors, 2);
    assert.equal(bridge.stats.underruns, 1);
  });
});

describe('AudioBridge: backend → caller', () => {
  test('backend audio in odd-sized chunks plays to the caller in real time at 440 Hz', () => {
    const bridge = new AudioBridge({
      sampleRate: BACKEND_RATE,
      packetizer: { firstSequenceNumber: 65530, firstTimestamp: 2 ** 32 - 960 * 3 },
    });
    const idle = runTicks(bridge, 0, 3);
    const tone = sine(440, BACKEND_RATE, 1000);
    for (let at = 0; at < tone.length; at += 4410 * 2)
      bridge.enqueueBackendAudio(tone.subarray(at, at + 4410 * 2));
    assert.equal(bridge.stats.queuedMs, 1000);
    const playing = runTicks(bridge, 60, 50);
    const after = runTicks(bridge, 1060, 3);
    const packets = [...idle, ...playing, ...after].map((tick) => tick.toClient!);
    assert.equal(packets.length, 56);
    packets.forEach((packet, i) => {
      assert.equal(packet.sequenceNumber, (65530 + i) & 0xffff);
      assert.equal(packet.timestamp, (2 ** 32 - 960 * 3 + 960 * i) >>> 0);
    });
    assert.deepEqual(
      packets.map((packet, i) => (packet.marker ? i : -1)).filter((i) => i >= 0),
      [0, 3],
      'the first packet, and the first audio after silence',
    );
    const heard = decodeAtCaller(packets);
    const audio = heard.subarray(1920 * 5, 1920 * 51);
    assert.ok(Math.abs(dominantFrequency(audio, 48000) - 440) < 2);
    assert.ok(rms(heard.subarray(0, 1920 * 3)) < 0.001, 'silence before');
    assert.ok(rms(heard.subarray(1920 * 55)) < 0.01, 'silence after');
    assert.equal(bridge.stats.audioFramesToClient, 50);
    assert.equal(bridge.stats.silenceFramesToClient, 6);
    assert.ok(
      packets.slice(0, 3).every((packet) => packet.payload.length < 20),
      'silence is cheap',
    );
  });

  test('marks are answered when their audio has played; clear drops the rest and answers at once', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 100));
    bridge.mark('first');
    bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 1000));
    bridge.mark('second');
    const ticks = runTicks(bridge, 0, 10);
    assert.deepEqual(
      ticks.map((tick) => tick.marksReached),
      [[], [], [], [], ['first'], [], [], [], [], []],
    );
    assert.deepEqual(bridge.clear(), ['second']);
    assert.equal(bridge.stats.queuedMs, 0);
    assert.equal(bridge.stats.clearedMs, 900);
    const afterClear = bridge.tick(200);
    assert.deepEqual(afterClear.marksReached, []);
    assert.equal(bridge.stats.silenceFramesToClient, 1, 'silence right after the clear');
    bridge.enqueueBackendAudio(sine(880, BACKEND_RATE, 40));
    assert.equal(bridge.tick(220).toClient!.marker, true, 'new audio starts a talkspurt');
  });

  test('a clear followed at once by new audio still marks the talkspurt', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 200));
    runTicks(bridge, 0, 3);
    bridge.clear();
    bridge.enqueueBackendAudio(sine(880, BACKEND_RATE, 200));
    const [first, second] = runTicks(bridge, 60, 2);
    assert.equal(first!.toClient!.marker, true);
    assert.equal(second!.toClient!.marker, false);
  });

  test("silence: 'skip' sends nothing while idle but keeps the clock running", () => {
    const bridge = new AudioBridge({
      sampleRate: 24000,
      silence: 'skip',
      packetizer: { firstSequenceNumber: 10, firstTimestamp: 0 },
    });
    assert.equal(bridge.tick(0).toClient, undefined);
    assert.equal(bridge.tick(20).toClient, undefined);
    bridge.enqueueBackendAudio(sine(440, 24000, 20));
    const packet = bridge.tick(40).toClient!;
    assert.equal(packet.sequenceNumber, 10);
    assert.equal(packet.timestamp, 2 * TIMESTAMP_STEP);
    assert.equal(packet.marker, true);
    assert.equal(bridge.stats.silenceFramesToClient, 0);
  });

  test('overflow drops the oldest audio and reports how much', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE, maxQueueMs: 1000 });
    assert.equal(bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 800)), 0);
    assert.equal(bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 500)), 300);
    assert.equal(bridge.stats.queuedMs, 1000);
    assert.equal(bridge.stats.overflowMs, 300);
  });
});
