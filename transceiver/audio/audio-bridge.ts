// One call's audio, both ways, one 20 ms tick at a time:
//
//   caller RTP → JitterBuffer → OpusFrameDecoder → PCM frames to the backend
//   backend PCM → PlayoutQueue → OpusFrameEncoder → OpusRtpPacketizer → RTP to the caller
//
// Sans-I/O apart from libopus: the transceiver feeds it RTP payloads and backend audio as they
// arrive, calls `tick` from its Pacer with the tick's scheduled time, and sends what comes out.
//
// Decisions:
// - To the backend, once the caller's audio has started, every tick yields exactly one frame: a
//   decoded packet, or concealment for a lost or late one (fading to silence over long gaps). The
//   backend gets a gapless 50 frames/s and never has to reason about the network.
// - To the caller, every tick yields one packet, with Opus-encoded silence when the queue is
//   empty (a few bytes per packet). werift only refreshes the RTP/NTP pair of its RTCP sender
//   reports from RTP it sends, the browser's jitter buffer stays primed, and the caller's stats
//   and media timeout keep seeing a live stream. `silence: 'skip'` sends nothing instead (the
//   timestamp still advances, and the next packet carries the marker).
// - The first packet of audio after silence, and after a clear (barge-in), has the marker bit:
//   a talkspurt start, where the receiver may re-adapt its playout delay.
import { frameBytes, type SampleRate } from '../../protocol/backend.ts';
import { JitterBuffer, type JitterBufferOptions } from './jitter-buffer.ts';
import { type OpusEncoderOptions, OpusFrameDecoder, OpusFrameEncoder } from './opus-codec.ts';
import { PlayoutQueue } from './playout-queue.ts';
import { OpusRtpPacketizer, type OpusRtpPacketizerOptions, type RtpPacketFields } from './rtp-packetizer.ts';

export interface AudioBridgeOptions {
  /** The backend's sample rate: what the decoder produces and the encoder takes. */
  sampleRate: SampleRate;
  jitterBuffer?: JitterBufferOptions;
  /** Most backend audio queued for the caller (default 60 s). */
  maxQueueMs?: number;
  encoder?: OpusEncoderOptions;
  packetizer?: OpusRtpPacketizerOptions;
  /** What the caller gets while nothing is queued: encoded silence (default) or no packet. */
  silence?: 'encode' | 'skip';
}

export interface AudioBridgeTick {
  /** PCM16LE frames for the backend, in order (one per tick once the caller's audio started). */
  toBackend: Buffer[];
  /**
   * The RTP packet for the caller (undefined only with `silence: 'skip'` and nothing queued): wrap
   * it in a werift `RtpPacket` for `sendRtp`.
   */
  toClient: RtpPacketFields | undefined;
  /** Backend marks whose audio has now been sent: answer each with a `mark` message. */
  marksReached: string[];
}

export interface AudioBridgeStats {
  /** RTP packets from the caller handed to `onRtp`. */
  rtpReceived: number;
  framesToBackend: number;
  /** Frames to the backend made up for missing audio (lost, late, undecodable, underrun). */
  concealedFrames: number;
  decodeErrors: number;
  lost: number;
  late: number;
  duplicate: number;
  /** Caller packets thrown away to keep the jitter buffer's delay bounded. */
  dropped: number;
  underruns: number;
  resyncs: number;
  /** Packets to the caller carrying backend audio. */
  audioFramesToClient: number;
  /** Packets to the caller carrying encoded silence. */
  silenceFramesToClient: number;
  queuedMs: number;
  /** Backend audio dropped because the queue was full (ms, total). */
  overflowMs: number;
  /** Backend audio dropped by `clear` (ms, total). */
  clearedMs: number;
}

export class AudioBridge {
  readonly sampleRate: SampleRate;
  readonly #jitterBuffer: JitterBuffer;
  readonly #decoder: OpusFrameDecoder;
  readonly #queue: PlayoutQueue;
  readonly #encoder: OpusFrameEncoder;
  readonly #packetizer: OpusRtpPacketizer;
  readonly #encodeSilence: boolean;
  readonly #silentFrame: Buffer;
  /** Whether the caller's audio has started: from then on the backend gets a frame every tick. */
  #callerAudioStarted = false;
  /** Whether the next backend audio frame starts a talkspurt (marker bit). */
  #talkspurtStart = true;
  #stats = {
    rtpReceived: 0,
    framesToBackend: 0,
    audioFramesToClient: 0,
    silenceFramesToClient: 0,
    overflowMs: 0,
    clearedMs: 0,
  };

  constructor(options: AudioBridgeOptions) {
    this.sampleRate = options.sampleRate;
    this.#jitterBuffer = new JitterBuffer(options.jitterBuffer);
    this.#decoder = new OpusFrameDecoder(options.sampleRate);
    this.#queue = new PlayoutQueue(options.sampleRate, { maxDurationMs: options.maxQueueMs ?? 60_000 });
    this.#encoder = new OpusFrameEncoder(options.sampleRate, options.encoder);
    this.#packetizer = new OpusRtpPacketizer(options.packetizer);
    this.#encodeSilence = (options.silence ?? 'encode') === 'encode';
    this.#silentFrame = Buffer.alloc(frameBytes(options.sampleRate));
  }

  /** An RTP packet from the caller (its payload: one Opus packet). */
  onRtp(sequenceNumber: number, timestamp: number, payload: Buffer, nowMs: number): void {
    this.#stats.rtpReceived++;
    this.#jitterBuffer.push(sequenceNumber, timestamp, payload, nowMs);
  }

  /** Queues backend audio (PCM16LE, any even length). Returns ms of the oldest audio dropped. */
  enqueueBackendAudio(pcm: Buffer): number {
    const droppedMs = this.#queue.enqueue(pcm);
    this.#stats.overflowMs += droppedMs;
    return droppedMs;
  }

  /** A backend mark: reached once the audio queued before it has been sent. */
  mark(name: string): void {
    this.#queue.mark(name);
  }

  /** Barge-in: drops all queued backend audio. Returns the pending marks, to answer now. */
  clear(): string[] {
    this.#stats.clearedMs += this.#queue.queuedMs;
    this.#talkspurtStart = true;
    return this.#queue.clear();
  }

  /** One 20 ms step at `nowMs` (the tick's scheduled time). */
  tick(nowMs: number): AudioBridgeTick {
    const toBackend: Buffer[] = [];
    const fromCaller = this.#jitterBuffer.pop(nowMs);
    if (fromCaller?.kind === 'frame') {
      toBackend.push(this.#decoder.decode(fromCaller.payload));
      this.#callerAudioStarted = true;
    } else if (fromCaller?.kind === 'lost' || this.#callerAudioStarted) {
      toBackend.push(this.#decoder.conceal());
      this.#callerAudioStarted = true;
    }
    this.#stats.framesToBackend += toBackend.length;

    const { frame, marksReached } = this.#queue.next();
    let toClient: RtpPacketFields | undefined;
    if (frame !== undefined) {
      toClient = this.#packetizer.packetize(this.#encoder.encode(frame), this.#talkspurtStart);
      this.#talkspurtStart = false;
      this.#stats.audioFramesToClient++;
    } else {
      this.#talkspurtStart = true;
      if (this.#encodeSilence) {
        // Through the live encoder (not a canned packet) so it winds down the previous audio.
        toClient = this.#packetizer.packetize(this.#encoder.encode(this.#silentFrame));
        this.#stats.silenceFramesToClient++;
      } else {
        this.#packetizer.skip();
      }
    }
    return { toBackend, toClient, marksReached };
  }

  /** Backend audio waiting to be played to the caller (ms). */
  get queuedMs(): number {
    return this.#queue.queuedMs;
  }

  get stats(): AudioBridgeStats {
    const jitter = this.#jitterBuffer.counters;
    const decoder = this.#decoder.stats;
    return {
      ...this.#stats,
      concealedFrames: decoder.concealed,
      decodeErrors: decoder.decodeErrors,
      lost: jitter.lost,
      late: jitter.late,
      duplicate: jitter.duplicate,
      dropped: jitter.dropped,
      underruns: jitter.underruns,
      resyncs: jitter.resyncs,
      queuedMs: this.#queue.queuedMs,
    };
  }
}
