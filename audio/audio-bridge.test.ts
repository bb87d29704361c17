import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Decoder, Encoder } from '@evan/opus';
import { AudioBridge, type AudioBridgeOutput, type ClientPacket } from './audio-bridge.ts';
import { TIMESTAMP_STEP } from './rtp-packetizer.ts';
import { dominantFrequency, rms, sine } from './tone.ts';

const BACKEND_RATE = 16000;
/** Deferred actions of a test that simulates time: [due ms, action]. */
const setTimeoutLike: [number, () => void][] = [];
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
function decodeAtCaller(packets: readonly ClientPacket[]): Buffer {
  const decoder = new Decoder({ channels: 1, sample_rate: 48000 });
  return Buffer.concat(packets.map((packet) => Buffer.from(decoder.decode(packet.rtp.payload))));
}

/** A deterministic pseudo-random generator, so failures reproduce. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48271) % 2147483647;
    return state / 2147483647;
  };
}

/** Polls the bridge every millisecond from `from` to `to` (as its timer would at wakeAt). */
function run(bridge: AudioBridge, from: number, to: number): (AudioBridgeOutput & { at: number })[] {
  const outputs: (AudioBridgeOutput & { at: number })[] = [];
  for (let at = from; at < to; at++) {
    if (bridge.wakeAt > at) continue;
    outputs.push({ ...bridge.poll(at), at });
  }
  return outputs;
}

/**
 * 300 ms of backend audio at once (echoed after a stall), then a frame at each of `arrivals` (ms)
 * until 3 s: how long each frame sent in the last second waited in the queue (ms).
 */
function waitsAfterBurst(
  bridge: AudioBridge,
  arrivals: ReadonlySet<number>,
  shed: { ms: number } = { ms: 0 },
): number[] {
  const frame = sine(440, BACKEND_RATE, 20);
  for (let i = 0; i < 15; i++) bridge.enqueueBackendAudio(frame, 0);
  const waits: number[] = [];
  for (let at = 0; at < 3_000; at++) {
    if (arrivals.has(at)) bridge.enqueueBackendAudio(frame, at);
    if (bridge.wakeAt > at) continue;
    const output = bridge.poll(at);
    shed.ms += output.shedMs;
    for (const packet of output.toClient) if (at >= 2_000) waits.push(at - packet.arrivedAt!);
  }
  return waits;
}

/** One frame every 20 ms for 3 s, `offset(slot)` ms into each slot. */
function everyFrame(offset: (slot: number) => number): Set<number> {
  return new Set(Array.from({ length: 150 }, (_, slot) => slot * 20 + offset(slot)));
}

describe('AudioBridge: caller → backend', () => {
  test('packets are decoded the moment they arrive, in order, through jitter and reordering', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const packets = callerPackets(sine(440, 48000, 2000));
    const rand = random(42);
    // Up to 8 ms of jitter: some packets overtake their predecessor.
    const arrivals = packets
      .map((payload, i) => ({
        at: 20 * i + rand() * 8,
        sequence: (65500 + i) & 0xffff,
        timestamp: i * 960,
        payload,
      }))
      .sort((a, b) => a.at - b.at);
    const frames: { pcm: Buffer; heldMs: number }[] = [];
    for (const { at, sequence, timestamp, payload } of arrivals) {
      for (const output of run(bridge, Math.floor(at), Math.floor(at)))
        frames.push(...output.toBackend.map((f) => ({ pcm: f.pcm, heldMs: 0 })));
      for (const frame of bridge.onRtp(sequence, timestamp, payload, at))
        frames.push({ pcm: frame.pcm, heldMs: at - frame.arrivedAt! });
    }
    assert.equal(frames.length, packets.length);
    assert.ok(frames.every((frame) => frame.pcm.length === BACKEND_FRAME));
    assert.equal(bridge.stats.lost + bridge.stats.late, 0, JSON.stringify(bridge.stats));
    assert.ok(Math.max(...frames.map((frame) => frame.heldMs)) <= 8, 'held only while overtaken');
    const voiced = Buffer.concat(frames.slice(3).map((frame) => frame.pcm));
    assert.ok(Math.abs(dominantFrequency(voiced, BACKEND_RATE) - 440) < 2);
    assert.ok(rms(voiced) > 0.25);
  });

  test('losses are concealed at once when certain; the backend gets 50 frames/s and the tone', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const packets = callerPackets(sine(440, 48000, 2000));
    const frames: Buffer[] = [];
    for (let at = 0; at < 20 * packets.length + 100; at++) {
      if (at % 20 === 0 && at / 20 < packets.length && (at / 20) % 10 !== 5)
        frames.push(...bridge.onRtp(at / 20, (at / 20) * 960, packets[at / 20]!, at).map((f) => f.pcm));
      if (bridge.wakeAt <= at) frames.push(...bridge.poll(at).toBackend.map((f) => f.pcm));
    }
    assert.ok(frames.length >= packets.length, `${frames.length} frames`);
    assert.equal(bridge.stats.lost >= 10, true);
    const voiced = Buffer.concat(frames.slice(3, packets.length - 3));
    assert.ok(Math.abs(dominantFrequency(voiced, BACKEND_RATE) - 440) < 15);
  });

  test('a caller in DTX: its pauses are made up for the backend, not lost, and it is heard again at once', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const packets = callerPackets(sine(440, 48000, 1000));
    const frames: { pcm: Buffer; arrivedAt: number | undefined; at: number }[] = [];
    // Talk 200 ms, a one-byte DTX packet (RFC 7587 §3.1.3), nothing for 400 ms, then talk again:
    // the sequence runs on unbroken, the timestamp moves on by the pause.
    const sent = new Map<number, { seq: number; timestamp: number; payload: Buffer }>();
    let seq = 7;
    for (let i = 0; i < 10; i++) sent.set(i * 20, { seq: seq++, timestamp: i * 960, payload: packets[i]! });
    sent.set(200, { seq: seq++, timestamp: 10 * 960, payload: Buffer.from([packets[0]![0]! & 0xfc]) });
    for (let i = 31; i < 50; i++) sent.set(i * 20, { seq: seq++, timestamp: i * 960, payload: packets[i]! });
    for (let at = 0; at < 1000; at++) {
      const packet = sent.get(at);
      if (packet !== undefined)
        for (const frame of bridge.onRtp(packet.seq, packet.timestamp, packet.payload, at))
          frames.push({ ...frame, at });
      if (bridge.wakeAt <= at) for (const frame of bridge.poll(at).toBackend) frames.push({ ...frame, at });
    }
    const { lost, dtx, late, resyncs } = bridge.stats;
    assert.deepEqual({ lost, late, resyncs }, { lost: 0, late: 0, resyncs: 0 });
    assert.equal(dtx, 20, 'the 20 frames the timestamp skipped');
    assert.equal(
      frames.length,
      50,
      `a frame every 20 ms, the pause included: ${frames.map((f) => f.at).join(' ')}`,
    );
    const back = frames.find((frame) => frame.arrivedAt === 620)!;
    assert.equal(back.at, 620, 'the first packet after the pause goes on arrival');
    const decodedAfter = frames.filter((frame) => frame.at >= 620 && frame.arrivedAt !== undefined);
    assert.equal(decodedAfter.length, 19);
    assert.ok(
      decodedAfter.every((frame) => frame.arrivedAt === frame.at),
      'each on arrival',
    );
  });

  test('garbage payloads are concealed, and a caller gone quiet is filled with silence', () => {
    const bridge = new AudioBridge({ sampleRate: 8000 });
    assert.deepEqual(bridge.poll(0).toBackend, [], 'nothing before the caller starts');
    const first = bridge.onRtp(1, 960, Buffer.from([0xff, 0xff, 0xff]), 0);
    const second = bridge.onRtp(2, 1920, Buffer.alloc(0), 20);
    assert.equal(first.length + second.length, 2);
    const later = run(bridge, 21, 260).flatMap((output) => output.toBackend);
    assert.ok(later.length >= 10, 'concealment keeps 50 frames/s after the caller went quiet');
    assert.ok(later.every((frame) => frame.pcm.length === 320 && rms(frame.pcm) === 0));
    assert.equal(bridge.stats.decodeErrors, 2);
  });
});

describe('AudioBridge: backend → caller', () => {
  test('audio leaves at once when the stream is idle, then in real time at 440 Hz, then DTX', () => {
    const bridge = new AudioBridge({
      sampleRate: BACKEND_RATE,
      packetizer: { firstSequenceNumber: 65530, firstTimestamp: 2 ** 32 - 960 * 3 },
    });
    const idle = run(bridge, 0, 100);
    assert.equal(idle.flatMap((o) => o.toClient).length, 1, 'one DTX frame starts the stream');
    const tone = sine(440, BACKEND_RATE, 1000);
    for (let at = 0; at < tone.length; at += 4410 * 2)
      bridge.enqueueBackendAudio(tone.subarray(at, at + 4410 * 2), 100);
    const playing = run(bridge, 100, 1200);
    const packets = [...idle, ...playing].flatMap((output) =>
      output.toClient.map((p) => ({ ...p, at: output.at })),
    );
    const audio = packets.filter((p) => p.arrivedAt !== undefined);
    assert.equal(audio.length, 50);
    // The first frames go the moment they arrive (a burst of five), then one every 20 ms.
    for (const [i, packet] of audio.entries()) assert.equal(packet.at, i < 5 ? 100 : 20 + 20 * i);
    const after = packets.filter((packet) => packet.arrivedAt === undefined && packet.at > 100);
    assert.equal(after.length, 5, 'when the audio stops: 100 ms of encoded silence');
    assert.ok(after.every((packet) => packet.rtp.payload.length > 1 && !packet.rtp.marker));
    assert.equal(bridge.stats.silenceFramesToClient, 5);
    for (const [i, packet] of packets.entries())
      assert.equal(packet.rtp.sequenceNumber, (65530 + i) & 0xffff);
    // Within the talkspurt timestamps follow the audio; across a silence, real time.
    const first = packets.indexOf(packets.find((packet) => packet.arrivedAt !== undefined)!);
    for (let i = 1; i < packets.length; i++) {
      const step = (packets[i]!.rtp.timestamp - packets[i - 1]!.rtp.timestamp) >>> 0;
      // Audio and the encoded silence that winds it down are one talkspurt; DTX frames jump.
      const audioToAudio = i > first && packets[i]!.rtp.payload.length > 1;
      const elapsed = Math.max(1, Math.round((packets[i]!.at - packets[i - 1]!.at) / 20)) * TIMESTAMP_STEP;
      assert.equal(step, audioToAudio ? TIMESTAMP_STEP : elapsed, `packet ${i}`);
    }
    assert.equal(audio[0]!.rtp.marker, true, 'a talkspurt starts');
    assert.ok(audio.slice(1).every((packet) => !packet.rtp.marker));
    const heard = decodeAtCaller(audio);
    assert.ok(Math.abs(dominantFrequency(heard.subarray(1920 * 3), 48000) - 440) < 2);
    assert.equal(bridge.stats.audioFramesToClient, 50);
  });

  test('a backend streaming in real time, with jitter, is one talkspurt: no DTX between its frames', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const frame = sine(440, BACKEND_RATE, 20);
    const packets: ClientPacket[] = [];
    for (let at = 0; at < 2_000; at++) {
      // A frame every 20 ms, up to 15 ms late.
      if (at % 20 === 0) {
        const jitter = (at * 7919) % 15;
        setTimeoutLike.push([at + jitter, () => bridge.enqueueBackendAudio(frame, at + jitter)]);
      }
      for (const [, run] of setTimeoutLike.filter(([due]) => due === at)) run();
      if (bridge.wakeAt <= at) packets.push(...bridge.poll(at).toClient);
    }
    setTimeoutLike.length = 0;
    const dtx = packets.filter((packet) => packet.rtp.payload.length === 1);
    assert.equal(dtx.length, 0, 'no DTX while frames keep coming');
    assert.ok(packets.length >= 98);
    assert.equal(packets.filter((packet) => packet.rtp.marker).length, 1, 'one talkspurt');
    assert.equal(bridge.stats.shedMs, 0, 'jitter is not a standing delay');
  });

  test('after a stall of the transceiver, what it held back goes out at once: no delay stays behind', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const frame = sine(440, BACKEND_RATE, 20);
    const sentAt: number[] = [];
    let heldBack = 0;
    for (let at = 0; at < 3_000; at++) {
      // The process does nothing for 300 ms; the backend's frames of that time wait in the socket,
      // and come in after the first timer has run.
      const stalled = at >= 1_000 && at < 1_300;
      if (at % 20 === 0) {
        if (stalled) heldBack++;
        else bridge.enqueueBackendAudio(frame, at);
      }
      if (stalled) continue;
      const take = () => {
        for (const packet of bridge.poll(at).toClient)
          if (packet.arrivedAt !== undefined) sentAt.push(at - packet.arrivedAt);
      };
      if (bridge.wakeAt <= at) take();
      for (; heldBack > 0; heldBack--) bridge.enqueueBackendAudio(frame, at);
      if (bridge.wakeAt <= at) take();
    }
    const afterStall = sentAt.slice(-50);
    assert.ok(Math.max(...afterStall) <= 1, `still ${Math.max(...afterStall)} ms behind`);
    assert.equal(bridge.stats.shedMs, 0, 'nothing had to be dropped');
  });

  test('timestamps keep real time over talkspurts: what one fell behind does not carry into the next', () => {
    const bridge = new AudioBridge({
      sampleRate: BACKEND_RATE,
      packetizer: { firstTimestamp: 2 ** 32 - 960 },
    });
    const frame = sine(440, BACKEND_RATE, 20);
    // Five talkspurts of a backend streaming in real time (a frame every 20 ms for 1 s), 600 ms apart.
    const arrivals = new Set<number>();
    for (let spurt = 0; spurt < 5; spurt++)
      for (let i = 0; i < 50; i++) arrivals.add(100 + spurt * 1_600 + i * 20);
    const sent: { at: number; rtp: ClientPacket['rtp'] }[] = [];
    for (let at = 0; at < 8_200; at++) {
      if (arrivals.has(at)) bridge.enqueueBackendAudio(frame, at);
      if (bridge.wakeAt > at) continue;
      for (const packet of bridge.poll(at).toClient) sent.push({ at, rtp: packet.rtp });
    }
    // How far each packet's send time is ahead of its timestamp (ms), from the first packet's.
    const first = sent[0]!;
    const lag = ({ at, rtp }: (typeof sent)[number]) =>
      at - first.at - ((rtp.timestamp - first.rtp.timestamp) >>> 0) / 48;
    const starts = sent.filter((packet) => packet.rtp.marker && packet.rtp.payload.length > 1);
    assert.equal(starts.length, 5);
    const lags = starts.map(lag);
    assert.ok(Math.max(...lags) - Math.min(...lags) <= 1, `talkspurts start ${lags.join(', ')} ms behind`);
    for (const packet of sent)
      assert.ok(Math.abs(lag(packet)) <= 41, `a packet ${lag(packet)} ms off real time`);
  });

  test('nothing is encoded while the backend is silent: a DTX frame every 400 ms', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const packets = run(bridge, 0, 2_001).flatMap((output) => output.toClient);
    assert.equal(packets.length, 6, '0, 400, …, 2000 ms');
    assert.ok(packets.every((packet) => packet.rtp.payload.length === 1));
    assert.equal(bridge.stats.dtxFramesToClient, 6);
  });

  test('a backend whose frames are up to 60 ms late mid-turn: no silence inside its turn', () => {
    // Every 25th frame of a real-time stream comes 60 ms late, the two after it with it (a backend
    // or a network that stalled). Encoded silence there would be a hole in the speech the caller
    // hears; sending nothing lets its decoder conceal, as for any late packet. The late frames start
    // a talkspurt, stamped with the real time, so the caller's timeline stays with real time.
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    const frame = sine(440, BACKEND_RATE, 20);
    const arrivals = new Map<number, number>();
    for (let slot = 0; slot < 100; slot++) {
      const at = slot % 25 === 10 || slot % 25 === 11 ? (slot - (slot % 25) + 12) * 20 : slot * 20;
      arrivals.set(at, (arrivals.get(at) ?? 0) + 1);
    }
    const sent: ClientPacket[] = [];
    for (let at = 0; at < 2_000; at++) {
      for (let n = arrivals.get(at) ?? 0; n > 0; n--) bridge.enqueueBackendAudio(frame, at);
      sent.push(...bridge.poll(at).toClient);
    }
    const audio = sent.filter((packet) => packet.arrivedAt !== undefined);
    assert.equal(audio.length, 100);
    const last = sent.indexOf(audio[audio.length - 1]!);
    const inside = sent.slice(0, last).filter((packet) => packet.arrivedAt === undefined);
    assert.equal(inside.length, 0, `${inside.length} packets of silence between the backend's frames`);
    assert.equal(
      sent.filter((packet) => packet.rtp.marker).length,
      5,
      'a talkspurt at the start and after each stall',
    );
    assert.equal(bridge.stats.shedMs, 0);
  });

  test('a turn that starts while the last one winds down: no encoded silence inside it, no delay', () => {
    // The backend streams in real time with jitter, then is cut (barge-in, `clear`) or pauses for
    // 100 ms, and speaks again 10 ms later: the wind-down's silence must stop where its audio starts.
    // The bridge is polled every millisecond: the call polls it on every event (a caller's packet,
    // a backend message), not only at wakeAt.
    for (const end of ['clear', 'pause'] as const) {
      const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
      const frame = sine(440, BACKEND_RATE, 20);
      const secondTurn = end === 'clear' ? 1_010 : 1_110;
      const arrivals = new Set<number>();
      for (let slot = 0; slot < 100; slot++) {
        const jitter = (slot * 7919) % 8;
        if (slot * 20 < 1_000) arrivals.add(slot * 20 + jitter);
        if (secondTurn + slot * 20 < 3_000) arrivals.add(secondTurn + slot * 20 + jitter);
      }
      const sent: (ClientPacket & { at: number })[] = [];
      for (let at = 0; at < 3_000; at++) {
        if (end === 'clear' && at === 1_000) bridge.clear();
        if (arrivals.has(at)) bridge.enqueueBackendAudio(frame, at);
        for (const packet of bridge.poll(at).toClient) sent.push({ ...packet, at });
      }
      const start = sent.findIndex((packet) => packet.at >= secondTurn && packet.arrivedAt !== undefined);
      assert.equal(sent[start]!.rtp.marker, true, `${end}: the second turn starts a talkspurt`);
      const turn = sent.slice(start).filter((packet) => packet.rtp.payload.length > 1);
      const silence = turn.filter((packet) => packet.arrivedAt === undefined);
      assert.equal(silence.length, 0, `${end}: ${silence.length} frames of silence inside the second turn`);
      const waits = turn.map((packet) => packet.at - packet.arrivedAt!);
      assert.ok(
        Math.max(...waits) <= 10,
        `${end}: a frame of the second turn waited ${Math.max(...waits)} ms`,
      );
    }
  });

  test('marks are answered when their audio has played; clear drops the rest and answers at once', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 100), 0);
    bridge.mark('first');
    bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 1000), 0);
    bridge.mark('second');
    const outputs = run(bridge, 0, 200);
    const reachedAt = outputs.find((output) => output.marksReached.includes('first'))!.at;
    assert.equal(reachedAt, 0, 'with the fifth frame (five go at once)');
    assert.deepEqual(bridge.clear(), ['second']);
    assert.equal(bridge.stats.queuedMs, 0);
    assert.ok(bridge.stats.clearedMs > 800);
    bridge.mark('empty');
    assert.deepEqual(bridge.poll(200).marksReached, ['empty'], 'a mark on an empty queue is reached at once');
    bridge.enqueueBackendAudio(sine(880, BACKEND_RATE, 40), 300);
    const next = bridge.poll(300).toClient;
    assert.equal(next[0]!.rtp.marker, true, 'new audio after a clear starts a talkspurt');
  });

  test('a standing backlog with real-time arrivals is shed within two seconds, to nothing; a burst is not', () => {
    for (const phase of [0, 7, 13]) {
      const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
      // After the burst, real time (`phase` ms into each slot): five go at once, the rest would
      // stand as delay for good.
      const shed = { ms: 0 };
      const delays = waitsAfterBurst(
        bridge,
        everyFrame(() => phase),
        shed,
      );
      assert.ok(delays.length >= 49, `phase ${phase}: ${delays.length} frames in the last second`);
      assert.ok(
        delays.every((ms) => ms === 0),
        `phase ${phase}: frames left ${Math.max(...delays)} ms after they arrived`,
      );
      assert.ok(bridge.stats.shedMs >= 180, `phase ${phase}: ${bridge.stats.shedMs} ms shed`);
      // Each poll says what it shed (the transceiver counts it: backend_shed_seconds_total).
      assert.equal(shed.ms, bridge.stats.shedMs);
    }

    const burst = new AudioBridge({ sampleRate: BACKEND_RATE });
    burst.enqueueBackendAudio(sine(440, BACKEND_RATE, 10_000), 0);
    run(burst, 0, 3_000);
    assert.equal(burst.stats.shedMs, 0, 'a TTS burst plays in full');
    assert.ok(Math.abs(burst.queuedMs - 7_000) <= 120, `${burst.queuedMs} ms left`);
  });

  test('a backend in step with an emptied bucket, with jitter: its frames soon go as they arrive', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE });
    // The burst drains the bucket, then a frame every 20 ms, 7 ms into the slot plus up to 9 ms of
    // jitter: some frames find a token, most wait for one.
    const delays = waitsAfterBurst(
      bridge,
      everyFrame((slot) => 7 + ((slot * 7919) % 10)),
    );
    const waited = delays.filter((ms) => ms > 0);
    assert.ok(delays.length >= 45, `${delays.length} frames in the last second`);
    assert.ok(waited.length <= delays.length / 10, `${waited.length} of ${delays.length} waited: ${waited}`);
  });

  test('overflow drops the oldest audio and reports how much', () => {
    const bridge = new AudioBridge({ sampleRate: BACKEND_RATE, maxQueueMs: 1000 });
    assert.equal(bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 800), 0), 0);
    assert.equal(bridge.enqueueBackendAudio(sine(440, BACKEND_RATE, 500), 0), 300);
    assert.equal(bridge.stats.queuedMs, 1000);
    assert.equal(bridge.stats.overflowMs, 300);
  });
});
