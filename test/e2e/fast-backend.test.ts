// Backends that send audio far ahead of real time, as many do (a TTS result in one go), against a
// real call through the edge (docs/reliability.md#the-backend-sends-faster-than-real-time):
// - a Twilio Media Streams agent (the test's own WebSocket server speaking Twilio's JSON,
//   docs/backend-protocol.md#twilio-media-streams): what `clear` and marks mean when the edge holds
//   seconds of its audio, what a flood does, and bad input;
// - a voice-edge backend against a 2 s queue bound (audio.maxQueueSeconds): the caller's delay stays
//   within it and the backend is told `queue-overflow`.
// The caller is werift (cli/caller.ts) and listens to what it receives.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type WebSocket, WebSocketServer } from 'ws';
import { pcm16ToMulaw } from '../../audio/mulaw.ts';
import { OpusFrameDecoder } from '../../audio/opus-codec.ts';
import { rms, sine } from '../../audio/tone.ts';
import { ToneCaller } from '../../cli/caller.ts';
import { encodeControl, SUBPROTOCOL } from '../../protocol/backend.ts';
import { Edge } from '../support/edge.ts';
import { sample } from '../support/prometheus.ts';
import { waitUntil } from '../support/wait.ts';

const FRAME_BYTES = 160; // 20 ms of 8 kHz μ-law
const LOUD = 0.05;

/** One agent connection: what it received, and a way to send. */
interface AgentCall {
  readonly socket: WebSocket;
  readonly streamSid: string;
  /** Marks echoed back, with when (performance.now()). */
  readonly marks: { name: string; at: number }[];
  readonly stopped: Promise<void>;
}

/** Sends `seconds` of a 600 Hz tone as 20 ms media messages at once, a mark after each second. */
function sendAhead(call: AgentCall, seconds: number, marks = true): void {
  const tone = pcm16ToMulaw(sine(600, 8000, 1000, 0.3));
  for (let second = 1; second <= seconds; second++) {
    for (let offset = 0; offset < tone.length; offset += FRAME_BYTES) {
      const payload = tone.subarray(offset, offset + FRAME_BYTES).toString('base64');
      call.socket.send(JSON.stringify({ event: 'media', streamSid: call.streamSid, media: { payload } }));
    }
    if (marks)
      call.socket.send(
        JSON.stringify({ event: 'mark', streamSid: call.streamSid, mark: { name: `s${second}` } }),
      );
  }
}

async function startAgent(): Promise<{ url: string; calls: AgentCall[]; close(): void }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  const calls: AgentCall[] = [];
  wss.on('connection', (socket) => {
    const marks: { name: string; at: number }[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.event === 'start') calls.push({ socket, streamSid: message.streamSid, marks, stopped });
      else if (message.event === 'mark') marks.push({ name: message.mark.name, at: performance.now() });
      else if (message.event === 'stop') stop();
    });
    socket.on('close', stop);
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/`,
    calls,
    close: () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}

/** A werift caller that keeps the loudness of every 20 ms frame it hears. */
class ListeningCaller {
  readonly caller: ToneCaller;
  readonly frames: { at: number; level: number }[] = [];
  readonly #decoder = new OpusFrameDecoder(48_000);
  readonly #done = new AbortController();
  #running: Promise<void> | undefined;

  constructor(whipUrl: string) {
    this.caller = new ToneCaller({ url: new URL(whipUrl), toneHz: 1000, token: undefined });
    this.caller.pc.onTrack.subscribe((track) =>
      track.onReceiveRtp.subscribe((rtp) => {
        this.frames.push({ at: performance.now(), level: rms(this.#decoder.decode(rtp.payload)) });
      }),
    );
  }

  async connect(): Promise<void> {
    await this.caller.connect(15_000, this.#done.signal);
    this.#running = this.caller.run(60_000, this.#done.signal);
  }

  /** The first and last loud frame heard in [from, to). */
  loud(from: number, to = Number.POSITIVE_INFINITY): { first?: number; last?: number } {
    const loud = this.frames.filter((f) => f.at >= from && f.at < to && f.level > LOUD);
    return { first: loud[0]?.at, last: loud.at(-1)?.at };
  }

  async hangUp(): Promise<void> {
    this.#done.abort();
    await this.#running;
    await this.caller.hangUp();
  }
}

describe('a Twilio Media Streams agent that sends ahead of real time', () => {
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let edge: Edge;

  before(async () => {
    agent = await startAgent();
    edge = await Edge.start({ backendUrl: agent.url, backendProtocol: 'twilio-media-streams' });
  });

  after(async () => {
    await edge?.stop();
    agent?.close();
  });

  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sample(await edge.transceiverMetrics(), name, labels);

  test('clear drops seconds of queued audio at once and answers the marks behind it', async () => {
    const caller = new ListeningCaller(edge.whipUrl);
    await caller.connect();
    await waitUntil(async () => agent.calls.length === 1, 5_000, 'the agent call');
    const call = agent.calls[0]!;
    const sent = performance.now();
    sendAhead(call, 5);
    await waitUntil(async () => caller.loud(sent).first !== undefined, 3_000, 'the agent heard');
    const heardFrom = caller.loud(sent).first!;
    await sleep(1_500);
    const clearedAt = performance.now();
    call.socket.send(JSON.stringify({ event: 'clear', streamSid: call.streamSid }));
    await sleep(1_000);
    const lastLoud = caller.loud(heardFrom).last!;
    const clears = await metric('voice_edge_transceiver_backend_clears_total');
    const clearedSeconds = await metric('voice_edge_transceiver_backend_cleared_seconds_total');
    await caller.hangUp();
    await call.stopped;
    const marks = call.marks.map((m) => ({ name: m.name, ms: Math.round(m.at - heardFrom) }));
    console.log(
      `twilio clear: audio stopped ${Math.round(lastLoud - clearedAt)} ms after the clear, ` +
        `${clearedSeconds.toFixed(2)} s dropped; marks (ms after the audio was first heard): ${JSON.stringify(marks)}`,
    );

    // The caller stopped hearing the agent within 100 ms of its clear, 3.5 s early.
    assert.ok(
      lastLoud - clearedAt < 100,
      `audio went on ${Math.round(lastLoud - clearedAt)} ms after the clear`,
    );
    assert.equal(clears, 1);
    assert.ok(Math.abs(clearedSeconds - 3.5) < 0.4, `the clear dropped ${clearedSeconds} s, not ~3.5 s`);
    // s1 came back once its second had been sent to the caller (a few frames go out at once at the
    // start, hence not quite 1000 ms after they were first heard); s2…s5 with the clear, at once;
    // none twice.
    assert.deepEqual(
      marks.map((m) => m.name),
      ['s1', 's2', 's3', 's4', 's5'],
    );
    const clearedMs = Math.round(clearedAt - heardFrom);
    assert.ok(marks[0]!.ms >= 850 && marks[0]!.ms < clearedMs, `s1 at ${marks[0]!.ms} ms`);
    for (const m of marks.slice(1)) {
      assert.ok(
        m.ms >= clearedMs && m.ms < clearedMs + 100,
        `${m.name} at ${m.ms} ms, clear at ${clearedMs} ms`,
      );
    }
  });

  test('a flood beyond the playout queue and bad messages are counted drops; the call goes on', async () => {
    const overflowBefore = await metric('voice_edge_transceiver_backend_drops_total', {
      reason: 'queue-overflow',
    });
    const badMessageBefore = await metric('voice_edge_transceiver_backend_drops_total', {
      reason: 'bad-message',
    });
    const badAudioBefore = await metric('voice_edge_transceiver_backend_drops_total', {
      reason: 'bad-audio',
    });
    const caller = new ListeningCaller(edge.whipUrl);
    await caller.connect();
    await waitUntil(async () => agent.calls.length === 2, 5_000, 'the agent call');
    const call = agent.calls[1]!;

    call.socket.send('{"event": "media", '); // not JSON
    call.socket.send(Buffer.from([1, 2, 3])); // binary: Twilio's messages are text
    call.socket.send(
      JSON.stringify({ event: 'media', streamSid: call.streamSid, media: { payload: '!!not base64!!' } }),
    );
    call.socket.send(JSON.stringify({ event: 'dtmf', streamSid: call.streamSid, dtmf: { digit: '1' } })); // unknown here: ignored
    // 30 s of audio at once: beyond the 20 s playout queue (the default audio.maxQueueSeconds).
    sendAhead(call, 30, false);
    await sleep(1_500);
    const heardAt = performance.now();
    await sleep(1_000);
    const metrics = await edge.transceiverMetrics();
    const heard = caller.loud(heardAt);
    await caller.hangUp();

    const overflow = sample(metrics, 'voice_edge_transceiver_backend_drops_total', {
      reason: 'queue-overflow',
    });
    const badMessage = sample(metrics, 'voice_edge_transceiver_backend_drops_total', {
      reason: 'bad-message',
    });
    const badAudio = sample(metrics, 'voice_edge_transceiver_backend_drops_total', { reason: 'bad-audio' });
    const queueMax = sample(metrics, 'voice_edge_transceiver_playout_queue_max_seconds');
    console.log(
      `twilio flood: queue max ${queueMax} s, drops: queue-overflow +${overflow - overflowBefore}, ` +
        `bad-message +${badMessage - badMessageBefore}, bad-audio +${badAudio - badAudioBefore}`,
    );
    // 500 messages beyond the queue, counted as one overflow each time the edge tells of it (at most
    // once a second), not once per message.
    const overflows = overflow - overflowBefore;
    assert.ok(overflows >= 1 && overflows <= 3, `queue-overflow counted ${overflows} times`);
    assert.equal(badMessage - badMessageBefore, 2);
    assert.equal(badAudio - badAudioBefore, 1);
    assert.ok(queueMax <= 20, `the playout queue held ${queueMax} s`);
    // The call went on: the agent's audio still plays.
    assert.ok(
      heard.first !== undefined && heard.last! - heard.first > 800,
      'the agent was not heard after the flood',
    );
  });
});

describe('a voice-edge backend that sends ahead of real time, against a 2 s queue bound', () => {
  let edge: Edge;
  let wss: WebSocketServer;
  /** What the backend received back: `error` codes and marks, with when (performance.now()). */
  const received: { type: string; code?: string; name?: string; at: number }[] = [];

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    await new Promise((resolve) => wss.once('listening', resolve));
    wss.on('connection', (socket) => {
      socket.on('message', (data, isBinary) => {
        if (isBinary) return;
        const message = JSON.parse(data.toString());
        if (message.type === 'start') {
          // 6 s of tone at once, in 20 ms frames, then a mark behind it.
          const tone = sine(600, 16_000, 6_000, 0.3);
          for (let offset = 0; offset < tone.length; offset += 640)
            socket.send(tone.subarray(offset, offset + 640));
          socket.send(encodeControl({ type: 'mark', name: 'after-6-s' }));
        } else if (message.type === 'error' || message.type === 'mark') {
          received.push({
            type: message.type,
            code: message.code,
            name: message.name,
            at: performance.now(),
          });
        }
      });
    });
    const { port } = wss.address() as AddressInfo;
    edge = await Edge.start({
      backendUrl: `ws://127.0.0.1:${port}/`,
      transceiver: { audio: { maxQueueSeconds: 2 } },
    });
  });

  after(async () => {
    await edge?.stop();
    for (const client of wss?.clients ?? []) client.terminate();
    wss?.close();
  });

  test('the caller hears at most 2 s of it; the oldest is dropped and the backend told queue-overflow', async () => {
    const caller = new ListeningCaller(edge.whipUrl);
    const dialled = performance.now();
    await caller.connect();
    await waitUntil(async () => caller.loud(dialled).first !== undefined, 5_000, 'the backend heard');
    await sleep(300);
    const queueMax = sample(
      await edge.transceiverMetrics(),
      'voice_edge_transceiver_playout_queue_max_seconds',
    );
    await waitUntil(async () => received.some((r) => r.type === 'mark'), 10_000, 'the mark behind the audio');
    await sleep(500);
    const heard = caller.loud(dialled);
    const metrics = await edge.transceiverMetrics();
    await caller.hangUp();
    const mark = received.find((r) => r.type === 'mark')!;
    const heardMs = heard.last! - heard.first!;
    const markMs = mark.at - heard.first!;
    const overflows = received.filter((r) => r.type === 'error' && r.code === 'queue-overflow').length;
    console.log(
      `fast backend, 2 s bound: heard ${Math.round(heardMs)} ms of 6 s, the mark behind it back ${Math.round(markMs)} ms after the first audio, ` +
        `${overflows} queue-overflow errors, ${queueMax} s queued 300 ms in`,
    );
    // What was dropped is the oldest 4 s: the caller hears the last 2 s, and the mark behind them
    // comes back when they have played, 2 s after the first audio rather than 6.
    assert.ok(heardMs > 1_500 && heardMs < 2_600, `the caller heard ${heardMs} ms`);
    assert.ok(markMs > 1_500 && markMs < 2_600, `the mark came back ${markMs} ms after the first audio`);
    assert.ok(overflows >= 1 && overflows <= 3, `${overflows} queue-overflow errors`);
    assert.ok(
      sample(metrics, 'voice_edge_transceiver_backend_drops_total', { reason: 'queue-overflow' }) >= 1,
    );
    assert.ok(queueMax > 1 && queueMax <= 2, `${queueMax} s queued 300 ms into the audio`);
  });
});
