// A light benchmark caller: one werift RTCPeerConnection that speaks just enough WebRTC (full ICE
// as the controlling agent, DTLS, SRTP, RTCP) to be a real call, but never encodes audio. It sends
// the pre-encoded burst cycle of stream.ts, one packet each time `tick()` is called (a metronome
// shared by all callers of the process calls it every 20 ms), and watches what comes back:
//
// - loop latency: the echo of each burst's onset is the first returned packet whose decoded level
//   is the tone's after at least QUIET_BEFORE quiet ones; its arrival minus the burst's send time,
//   minus the echo agent's delay, is one sample (decoded: at 64 kb/s CELT, what the transceiver
//   sends by default, silence and tone take the same 160 bytes a frame);
// - pacing offsets: within a talkspurt the far end sends this call's packets on its 20 ms grid, so
//   arrival time − the (extended) RTP timestamp in ms is constant plus however late the packet
//   was; the run turns these into delays behind the grid, talkspurt by talkspurt (analysis.ts);
// - loss: returned sequence numbers missing, and the far end's RTCP receiver reports on ours;
// - RTCP round trips: our sender report → the far end's receiver report (its DLSR removed), i.e.
//   how long our packets waited before the far end processed them, plus the way back.
//
// With `conversation`, it sends the conversation workload instead (conversation.ts): its speech in
// its turns of the call's seeded schedule, its noise floor between them, and times no echo.
//
// With `decode`, it also measures each echoed burst's steady middle (a few callers only), to check
// that the tone is the one sent.
import { performance } from 'node:perf_hooks';
import type { RTCPeerConnection, RtpPacket } from 'werift';
import { OpusFrameDecoder } from '../../audio/opus-codec.ts';
import { dominantFrequency, rms } from '../../audio/tone.ts';
import { CallerPeer } from '../../cli/caller-peer.ts';
import { opusMaxPlaybackRate, opusParameter } from '../../transceiver/sdp.ts';
import { type ConversationOptions, callSeed, TurnCursor } from './conversation.ts';
import type { CallerVoice } from './speech.ts';
import { CYCLE_FRAMES, type EncodedStream, forPlaybackRate, QUIET_BEFORE } from './stream.ts';

/** libopus's DTX frames are one or two bytes: a TOC byte, nothing coded (WebRTC's test). */
const DTX_FRAME_BYTES = 2;

/** How a caller gets its offer answered: WHIP through the edge, or the direct endpoint. */
export type Signal = (
  offer: string,
) => Promise<{ answer: string; hangUp: () => Promise<void>; sessionId?: string | undefined }>;

export interface SetupTimes {
  /** createOffer + setLocalDescription + host candidate gathering (ms, before the clock starts). */
  offerMs: number;
  /** Offer sent → answer received (ms). */
  answerMs: number;
  /** Offer sent → ICE connected (a check answered through the path, ms). */
  iceConnectedMs: number;
  /** Offer sent → DTLS connected (ms). */
  connectedMs: number;
  /** Offer sent → first returned packet carrying audio (the tone) (ms); NaN until then. */
  firstAudioMs: number;
}

/** What one caller saw during a measurement window. */
export interface WindowCounts {
  /** Packets we sent. */
  sent: number;
  /** Returned packets expected by sequence number (highest − highest at the start). */
  expected: number;
  received: number;
  /** Our packets the far end reported lost (RTCP, cumulative difference). */
  remoteLost: number;
  /** Loop latencies of the bursts whose echo came back (ms, echo delay removed). */
  latenciesMs: number[];
  /** Bursts sent (and due back) during the window whose echo was not found. */
  missedBursts: number;
  /** RTCP round trips completed during the window (ms). */
  rttsMs: number[];
  /**
   * Per returned packet: arrival (performance.now ms) − its media time, the extended RTP timestamp
   * in ms (48 kHz clock). With one packet per 20 ms this is arrival − 20 × sequence number as
   * before; unlike the sequence number, it stays right across gaps in what the far end sends (it
   * sends nothing, or DTX, while the agent is silent).
   */
  offsetsMs: Float64Array;
  /** Per returned packet: 1 where its timestamp is not one frame after the previous one's (a run starts). */
  runStarts: Uint8Array;
}

/** Onset checks of a decoding caller. */
export interface DecodeCheck {
  /** Dominant frequency (Hz) and RMS level of the steady middle of each echoed burst. */
  frequencies: number[];
  levels: number[];
}

export interface CallerOptions {
  /** The cycle encoded at each rate an answer may ask for (see forPlaybackRate). */
  readonly streams: readonly EncodedStream[];
  /** The echo agent's configured delay, removed from every loop latency (ms). */
  readonly echoDelayMs: number;
  /** Which frame of the cycle this caller sends first (spreads bursts over the cycle). */
  readonly cyclePhase: number;
  /** Decode the returned audio (costly: a few callers only). */
  readonly decode?: boolean;
  /**
   * The conversation workload instead of the tone cycle: the caller talks (`voice.speech`) in its
   * turns of the call's schedule and sends its noise floor (`voice.noise`) between them; no echo is
   * timed. The schedule's seed is the session ID (from the signal) mixed with `runSeed`.
   */
  readonly conversation?: {
    /** The caller's voice encoded at each rate an answer may ask for. */
    readonly voices: readonly CallerVoice[];
    readonly options: ConversationOptions;
    readonly runSeed: number;
  };
}

interface OpenWindow {
  sent: number;
  highest: number;
  received: number;
  remoteLost: number;
  latenciesMs: number[];
  burstsSent: number;
  burstsFound: number;
  rttsMs: number[];
  offsets: Float64Array;
  runStarts: Uint8Array;
  count: number;
}

/** Level above which a decoded frame counts as tone (the tone's RMS is about 0.21). */
const DECODED_LOUD = 0.02;
/** An echo 0–800 ms after a burst left can only be that burst's (one burst a second). */
const MAX_LOOP_MS = 800;

/** One 20 ms frame on the 48 kHz RTP clock. */
const RTP_FRAME = 960;

let ssrcSeed = 1;

export class Caller {
  readonly pc: RTCPeerConnection;
  /** Whether this caller decodes what comes back (`options.decode`). */
  readonly decodes: boolean;
  readonly times: SetupTimes = {
    offerMs: Number.NaN,
    answerMs: Number.NaN,
    iceConnectedMs: Number.NaN,
    connectedMs: Number.NaN,
    firstAudioMs: Number.NaN,
  };
  readonly check: DecodeCheck = { frequencies: [], levels: [] };
  readonly #peer: CallerPeer;
  readonly #options: CallerOptions;
  #offerSentAt = 0;
  /** What this call sends, at the rate its answer asked for (set in connect). */
  #stream: EncodedStream | undefined;
  #voice: CallerVoice | undefined;
  /** The voice's frames to send: with libopus DTX when the answer asks for it (usedtx=1). */
  #frames: { readonly speech: readonly Buffer[]; readonly noise: readonly Buffer[] } | undefined;
  /** The last frame was a DTX frame: the next ones are not sent until audio resumes. */
  #inDtx = false;
  #hangUp: (() => Promise<void>) | undefined;
  #connected = false;
  #closed = false;
  #onFirstAudio: (() => void) | undefined;
  // Sending.
  #seq = (ssrcSeed++ * 7919) & 0xffff;
  #timestamp = 0;
  #frame: number;
  #sent = 0;
  // The conversation workload: the schedule's cursor, media time (ms since connected), loop indices.
  #turns: TurnCursor | undefined;
  #mediaMs = 0;
  #talking = false;
  #speechIndex = 0;
  #noiseIndex = 0;
  /** Send time of the latest burst onset (performance.now ms), NaN before the first. */
  #burstSentAt = Number.NaN;
  #burstFound = true;
  // Receiving.
  #received = 0;
  /** Extended sequence number of the highest returned packet, NaN before the first. */
  #highest = Number.NaN;
  /** Extended RTP timestamp of the latest returned packet, NaN before the first. */
  #lastTimestamp = Number.NaN;
  #quietRun = 0;
  #window: OpenWindow | undefined;
  /** Decodes what comes back in the tone workload (the conversation workload times no echo). */
  readonly #decoder = new OpusFrameDecoder(16_000);
  /** The echoed burst being heard (with `decode`). */
  #burstPcm: Buffer[] = [];

  constructor(options: CallerOptions) {
    this.#options = options;
    this.#frame = ((options.cyclePhase % CYCLE_FRAMES) + CYCLE_FRAMES) % CYCLE_FRAMES;
    this.#peer = new CallerPeer('loopback', (rtp) => this.#onRtp(rtp));
    this.pc = this.#peer.pc;
    this.pc.iceConnectionStateChange.subscribe((state) => {
      if (state === 'connected' && Number.isNaN(this.times.iceConnectedMs)) {
        this.times.iceConnectedMs = performance.now() - this.#offerSentAt;
      }
    });
    this.pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' && !this.#connected) {
        this.#connected = true;
        this.times.connectedMs = performance.now() - this.#offerSentAt;
      }
    });
    // Every completed RTCP round trip (werift averages them; we want each one).
    this.#peer.onRoundTrip((seconds) => this.#window?.rttsMs.push(seconds * 1000));
    this.decodes = options.decode === true;
  }

  get connected(): boolean {
    return this.#connected && !this.#closed;
  }

  /** Offers, has the offer answered through `signal`, and waits for DTLS. */
  async connect(signal: Signal, timeoutMs = 15_000): Promise<void> {
    const began = performance.now();
    const offer = await this.#peer.offer();
    this.#offerSentAt = performance.now();
    this.times.offerMs = this.#offerSentAt - began;
    const { answer, hangUp, sessionId } = await signal(offer);
    this.#hangUp = hangUp;
    const maxPlaybackRate = opusMaxPlaybackRate(answer);
    this.#stream = forPlaybackRate(this.#options.streams, maxPlaybackRate);
    const conversation = this.#options.conversation;
    if (conversation !== undefined) {
      const seed = callSeed(sessionId ?? `${ssrcSeed}-${Math.random()}`, conversation.runSeed);
      this.#turns = new TurnCursor(seed, conversation.options, 'caller');
      // Each call starts its speech loop elsewhere.
      this.#voice = forPlaybackRate(conversation.voices, maxPlaybackRate);
      this.#frames = opusParameter(answer, 'usedtx') === '1' ? this.#voice.dtx : this.#voice;
      this.#speechIndex = seed % this.#voice.speech.length;
    }
    this.times.answerMs = performance.now() - this.#offerSentAt;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    const deadline = performance.now() + timeoutMs;
    while (!this.#connected) {
      if (this.#closed) throw new Error('closed while connecting');
      if (this.pc.connectionState === 'failed') throw new Error('connection failed');
      if (performance.now() > deadline) throw new Error(`not connected within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Resolves when the first returned packet carrying audio arrives (setup-time runs). */
  firstAudio(timeoutMs = 5_000): Promise<void> {
    if (!Number.isNaN(this.times.firstAudioMs)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echoed audio within ${timeoutMs} ms`)), timeoutMs);
      this.#onFirstAudio = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends the next frame of the cycle (the metronome calls it once per 20 ms). */
  tick(): void {
    if (!this.#connected || this.#closed) return;
    if (this.#turns !== undefined) {
      this.#conversationTick(this.#turns, this.#frames!);
      return;
    }
    const index = this.#frame;
    this.#frame = index + 1 === CYCLE_FRAMES ? 0 : index + 1;
    const packet = {
      sequenceNumber: this.#seq,
      timestamp: this.#timestamp,
      marker: index === 0,
      payloadType: 111,
      payload: this.#stream!.frames[index]!,
    };
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#timestamp = (this.#timestamp + RTP_FRAME) >>> 0;
    if (index === 0) {
      const window = this.#window;
      if (window !== undefined && !Number.isNaN(this.#burstSentAt)) {
        window.burstsSent++;
        if (this.#burstFound) window.burstsFound++;
      }
      this.#burstSentAt = performance.now();
      this.#burstFound = false;
    }
    this.#sent++;
    this.#peer.send(packet);
  }

  /**
   * One frame of the conversation: speech in the caller's turns, its noise floor between them. In
   * DTX, as WebRTC does: the first one-byte frame of a silence is sent, the ones after it are not
   * (the RTP timestamp runs on, the sequence number does not), and libopus's own frame every 400 ms
   * refreshes the far end's comfort noise.
   */
  #conversationTick(
    turns: TurnCursor,
    frames: { speech: readonly Buffer[]; noise: readonly Buffer[] },
  ): void {
    const talking = turns.at(this.#mediaMs) !== undefined;
    this.#mediaMs += 20;
    let payload: Buffer;
    if (talking) {
      payload = frames.speech[this.#speechIndex]!;
      this.#speechIndex = (this.#speechIndex + 1) % frames.speech.length;
    } else {
      payload = frames.noise[this.#noiseIndex]!;
      this.#noiseIndex = (this.#noiseIndex + 1) % frames.noise.length;
    }
    const dtx = payload.length <= DTX_FRAME_BYTES;
    const unsent = dtx && this.#inDtx;
    this.#inDtx = dtx;
    if (unsent) {
      this.#timestamp = (this.#timestamp + RTP_FRAME) >>> 0;
      return;
    }
    const packet = {
      sequenceNumber: this.#seq,
      timestamp: this.#timestamp,
      // As a browser marks the first packet of a talkspurt.
      marker: talking && !this.#talking,
      payloadType: 111,
      payload,
    };
    this.#talking = talking;
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#timestamp = (this.#timestamp + RTP_FRAME) >>> 0;
    this.#sent++;
    this.#peer.send(packet);
  }

  #onRtp(rtp: RtpPacket): void {
    const now = performance.now();
    this.#received++;
    const seq = rtp.header.sequenceNumber;
    let extended: number;
    if (Number.isNaN(this.#highest)) {
      extended = seq;
      this.#highest = seq;
    } else {
      extended = this.#highest + (((seq - (this.#highest & 0xffff) + 0x8000) & 0xffff) - 0x8000);
      if (extended > this.#highest) this.#highest = extended;
    }
    const window = this.#window;
    if (window !== undefined && window.count < window.offsets.length) {
      const previous = this.#lastTimestamp;
      window.offsets[window.count] = now - this.#mediaTimeMs(rtp.header.timestamp);
      window.runStarts[window.count] = this.#lastTimestamp - previous === RTP_FRAME ? 0 : 1;
      window.count++;
    }
    // The conversation workload times no echo: the agent speaks its own turns.
    if (this.#turns !== undefined) return;
    const pcm = this.#decoder.decode(rtp.payload);
    const loud = rms(pcm) > DECODED_LOUD;
    if (loud && Number.isNaN(this.times.firstAudioMs)) {
      this.times.firstAudioMs = now - this.#offerSentAt;
      this.#onFirstAudio?.();
      this.#onFirstAudio = undefined;
    }
    if (loud && this.#quietRun >= QUIET_BEFORE) this.#onset(now);
    if (this.decodes) this.#checkBurst(pcm, loud);
    this.#quietRun = loud ? 0 : this.#quietRun + 1;
  }

  /** The RTP timestamp extended past its 32-bit wrap (from the previous one), in ms. */
  #mediaTimeMs(timestamp: number): number {
    const last = this.#lastTimestamp;
    const extended = Number.isNaN(last)
      ? timestamp
      : last +
        ((((timestamp - (last % 0x1_0000_0000) + 0x8000_0000) % 0x1_0000_0000) + 0x1_0000_0000) %
          0x1_0000_0000) -
        0x8000_0000;
    this.#lastTimestamp = extended;
    return extended / 48;
  }

  #onset(now: number): void {
    const latency = now - this.#burstSentAt;
    if (this.#burstFound || !(latency >= 0 && latency < MAX_LOOP_MS)) return;
    this.#burstFound = true;
    this.#window?.latenciesMs.push(latency - this.#options.echoDelayMs);
  }

  /** Collects an echoed burst's frames; when it ends, measures its steady middle. */
  #checkBurst(pcm: Buffer, loud: boolean): void {
    if (loud) {
      if (this.#quietRun >= QUIET_BEFORE) this.#burstPcm = [];
      this.#burstPcm.push(pcm);
      return;
    }
    if (this.#quietRun === 0 && this.#burstPcm.length > 0) {
      const middle = Buffer.concat(this.#burstPcm.slice(1, -1));
      if (this.#window !== undefined && middle.length > 0) {
        this.check.frequencies.push(dominantFrequency(middle, 16_000));
        this.check.levels.push(rms(middle));
      }
      this.#burstPcm = [];
    }
  }

  /** Starts a measurement window of about `packets` returned packets. */
  beginWindow(packets: number): void {
    this.#window = {
      sent: this.#sent,
      highest: this.#highest,
      received: this.#received,
      remoteLost: this.#peer.remotePacketsLost,
      latenciesMs: [],
      burstsSent: 0,
      burstsFound: 0,
      rttsMs: [],
      offsets: new Float64Array(packets + 200),
      runStarts: new Uint8Array(packets + 200),
      count: 0,
    };
  }

  /** Ends the window and returns its counts. */
  endWindow(): WindowCounts {
    const window = this.#window;
    if (window === undefined) throw new Error('no window open');
    this.#window = undefined;
    const expected = Number.isNaN(this.#highest)
      ? 0
      : Number.isNaN(window.highest)
        ? this.#received - window.received
        : this.#highest - window.highest;
    return {
      sent: this.#sent - window.sent,
      expected,
      received: this.#received - window.received,
      remoteLost: Math.max(0, this.#peer.remotePacketsLost - window.remoteLost),
      latenciesMs: window.latenciesMs,
      missedBursts: window.burstsSent - window.burstsFound,
      rttsMs: window.rttsMs,
      offsetsMs: window.offsets.subarray(0, window.count),
      runStarts: window.runStarts.subarray(0, window.count),
    };
  }

  /** Hangs up (WHIP DELETE or the endpoint's equivalent) and closes the peer connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onFirstAudio = undefined;
    await this.#hangUp?.().catch(() => {});
    await this.pc.close().catch(() => {});
  }
}
