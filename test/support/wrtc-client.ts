// A WHIP caller built on libwebrtc (@roamhq/wrtc): sends a tone from a synthetic microphone,
// records what it hears, measures setup time. It runs inside wrtc-host.ts's child process only:
// @roamhq/wrtc 0.10 crashes (SIGSEGV) while Node 24 tears a process down, so tests drive callers
// through RemoteCaller (wrtc-remote.ts) and never load wrtc themselves.

import { setTimeout as sleep } from 'node:timers/promises';
import wrtc from '@roamhq/wrtc';
import { dominantFrequency, rms, sine } from '../../audio/tone.ts';

const RATE = 48_000;
const CHUNK = 480; // 10 ms, what RTCAudioSource takes

interface AudioSourceData {
  samples: Int16Array;
  sampleRate: number;
  bitsPerSample: number;
  channelCount: number;
  numberOfFrames: number;
}

export interface CallOptions {
  readonly toneHz?: number;
  readonly timeoutMs?: number;
  /** More headers for the WHIP POST (e.g. X-Voice-Edge-Region). */
  readonly headers?: Record<string, string>;
}

export interface CallStats {
  rttMs: number | null;
  jitterMs: number | null;
  packetsReceived: number;
  packetsLost: number;
}

interface ReceivedChunk {
  readonly at: number;
  readonly pcm: Buffer;
}

export class WhipCaller {
  readonly pc: RTCPeerConnection;
  readonly #source: { onData(data: AudioSourceData): void; createTrack(): MediaStreamTrack };
  readonly #track: MediaStreamTrack;
  readonly received: ReceivedChunk[] = [];
  location = '';
  whipBase = '';
  setupMs = Number.NaN;
  #toneHz = 0;
  #tone: Buffer = Buffer.alloc(0);
  #offset = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #channel: RTCDataChannel;
  readonly messages: string[] = [];
  readonly #sinks: { stop(): void }[] = [];

  constructor() {
    this.pc = new wrtc.RTCPeerConnection() as RTCPeerConnection;
    this.#source = new wrtc.nonstandard.RTCAudioSource();
    this.#track = this.#source.createTrack();
    this.pc.addTrack(this.#track);
    this.#channel = this.pc.createDataChannel('events');
    this.#channel.onmessage = (event: MessageEvent) => this.messages.push(String(event.data));
    this.pc.ontrack = (event: RTCTrackEvent) => {
      const sink = new wrtc.nonstandard.RTCAudioSink(event.track);
      this.#sinks.push(sink);
      sink.ondata = (data: AudioSourceData) => {
        const samples = data.channelCount === 1 ? data.samples : monoOf(data.samples, data.channelCount);
        this.received.push({
          at: Date.now(),
          pcm: Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength),
        });
      };
    };
  }

  /** POSTs an offer to `whipUrl`, applies the answer and waits for `connected`. */
  static async call(whipUrl: string, options: CallOptions = {}): Promise<WhipCaller> {
    const caller = new WhipCaller();
    try {
      await caller.connect(whipUrl, options.timeoutMs ?? 10_000, options.headers);
    } catch (error) {
      caller.close();
      throw error;
    }
    caller.play(options.toneHz ?? 440);
    return caller;
  }

  async connect(whipUrl: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
    const started = Date.now();
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const response = await fetch(whipUrl, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/sdp' },
      body: this.pc.localDescription!.sdp,
    });
    const body = await response.text();
    if (response.status !== 201) throw new Error(`WHIP POST answered ${response.status}: ${body}`);
    this.location = response.headers.get('location') ?? '';
    this.whipBase = new URL(whipUrl).origin;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: body });
    await this.waitFor(() => this.pc.connectionState === 'connected', timeoutMs, 'connected');
    this.setupMs = Date.now() - started;
  }

  /** Restarts ICE: a re-offer with new credentials, PATCHed to the session as application/sdp. */
  async restartIce(): Promise<Response> {
    await this.pc.setLocalDescription(await this.pc.createOffer({ iceRestart: true }));
    const response = await fetch(this.resourceUrl, {
      method: 'PATCH',
      headers: { 'content-type': 'application/sdp' },
      body: this.pc.localDescription!.sdp,
    });
    if (response.status === 200)
      await this.pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    return response;
  }

  get resourceUrl(): string {
    return new URL(this.location, this.whipBase).toString();
  }

  /** Feeds the microphone with a sine (0 = silence) in real time. */
  play(toneHz: number): void {
    this.#toneHz = toneHz;
    this.#tone = toneHz > 0 ? sine(toneHz, RATE, 1000) : Buffer.alloc(RATE * 2);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      const samples = new Int16Array(CHUNK);
      const total = this.#tone.length / 2;
      for (let i = 0; i < CHUNK; i++) samples[i] = this.#tone.readInt16LE(((this.#offset + i) % total) * 2);
      this.#offset += CHUNK;
      this.#source.onData({
        samples,
        sampleRate: RATE,
        bitsPerSample: 16,
        channelCount: 1,
        numberOfFrames: CHUNK,
      });
    }, 10);
  }

  get toneHz(): number {
    return this.#toneHz;
  }

  /** Sends on the data channel, once it is open (it opens a little after the connection). */
  async sendMessage(text: string): Promise<void> {
    await this.waitFor(() => this.#channel.readyState === 'open', 5_000, 'the data channel to open');
    this.#channel.send(text);
  }

  /** What was heard in [from, to) (ms timestamps). */
  heard(from: number, to = Date.now()): Buffer {
    return Buffer.concat(
      this.received.filter((chunk) => chunk.at >= from && chunk.at < to).map((chunk) => chunk.pcm),
    );
  }

  /** Dominant frequency and level of what was heard in the last `ms`. */
  listen(ms: number): { frequency: number; level: number } {
    const pcm = this.heard(Date.now() - ms);
    return { frequency: dominantFrequency(pcm, RATE), level: rms(pcm) };
  }

  async waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what} (connection ${this.pc.connectionState})`);
      await sleep(20);
    }
  }

  /** Waits until the echo of the tone is heard at `toneHz` ± 10 Hz. */
  async waitForEcho(timeoutMs = 5_000, toneHz = this.#toneHz): Promise<number> {
    const started = Date.now();
    await this.waitFor(
      () => {
        const { frequency, level } = this.listen(300);
        return level > 0.05 && Math.abs(frequency - toneHz) <= 10;
      },
      timeoutMs,
      `an echo at ${toneHz} Hz`,
    );
    return Date.now() - started;
  }

  /**
   * What libwebrtc's own statistics say of the call: RTT from the RTCP reports on the stream it
   * sends (remote-inbound-rtp), jitter and loss of the stream it receives (inbound-rtp).
   */
  async stats(): Promise<CallStats> {
    const report = await this.pc.getStats();
    const out: CallStats = { rttMs: null, jitterMs: null, packetsReceived: 0, packetsLost: 0 };
    report.forEach((entry: Record<string, unknown>) => {
      if (entry.kind !== 'audio' && entry.mediaType !== 'audio') return;
      // Before the first receiver report libwebrtc says 0 (with no measurement): that is no RTT.
      const measured = entry.roundTripTimeMeasurements !== 0 && entry.roundTripTime !== 0;
      if (entry.type === 'remote-inbound-rtp' && typeof entry.roundTripTime === 'number' && measured)
        out.rttMs = entry.roundTripTime * 1000;
      if (entry.type === 'inbound-rtp') {
        if (typeof entry.jitter === 'number') out.jitterMs = entry.jitter * 1000;
        if (typeof entry.packetsReceived === 'number') out.packetsReceived = entry.packetsReceived;
        if (typeof entry.packetsLost === 'number') out.packetsLost = entry.packetsLost;
      }
    });
    return out;
  }

  async hangUp(): Promise<number> {
    let response: Response;
    try {
      response = await fetch(this.resourceUrl, { method: 'DELETE' });
    } catch {
      // The pooled keep-alive connection may be dead (a NAT that forgot its mapping resets it):
      // DELETE is idempotent, so try once more on a fresh connection.
      response = await fetch(this.resourceUrl, { method: 'DELETE', headers: { connection: 'close' } });
    }
    this.close();
    return response.status;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const sink of this.#sinks) sink.stop();
    this.#track.stop();
    this.#channel.close();
    this.pc.close();
  }
}

function monoOf(samples: Int16Array, channels: number): Int16Array {
  const mono = new Int16Array(samples.length / channels);
  for (let i = 0; i < mono.length; i++) mono[i] = samples[i * channels]!;
  return mono;
}
