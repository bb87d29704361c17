// One call's audio, both ways, driven by events rather than a shared 20 ms tick:
//
//   caller RTP → ArrivalOrder → OpusFrameDecoder → PCM frames to the backend, as each packet arrives
//   backend PCM → PlayoutQueue → OpusFrameEncoder → OpusRtpPacketizer → RTP to the caller, paced
//
// Sans-I/O apart from libopus: the call hands it RTP payloads and backend audio with the time they
// arrived, calls `poll` when `wakeAt` comes, and sends what comes out. docs/transceiver.md#audio
// explains the choices; in short:
//
// - To the backend, nothing is held: a packet is decoded and handed on the moment it arrives, in
//   order; a lost one is concealed as soon as it is certainly lost (arrival-order.ts). Once the
//   caller's audio has started the backend gets exactly 50 frames a second, gapless (a caller in
//   DTX sends nothing while its user is silent: those frames are made up as for a loss).
// - To the caller, audio goes out as soon as it is ready, never ahead of real time: a token
//   bucket of 50 frames a second holding `burstFrames` (5) at a talkspurt's start and up to 25
//   within one, so a stall's backlog goes out as soon as it is there. A backend that streams in real
//   time has every frame sent the moment it arrives, whatever its phase; a faster one (a TTS burst)
//   is paced at 20 ms. Calls are not aligned to a shared tick, so their packets spread over the
//   20 ms instead of leaving in one burst. RTP timestamps run on with the audio within a talkspurt
//   and catch up with real time across a silence.
// - While the backend is silent nothing is encoded: its talkspurt is over once no frame has come
//   for 40 ms after the last one; once none has for 80 ms (not sooner: a backend late now and then
//   must not get silence between its frames), or at once when it is cleared, 100 ms of encoded
//   silence wind it down, then a one-byte Opus DTX frame (RFC 7587 §3.1.3, what libopus itself
//   sends in DTX) goes every 400 ms, so the caller's decoder plays comfort noise and RTCP keeps
//   flowing.
// - A standing delay is shed. When the backend streams in real time (about a second of audio per
//   second) but over a quarter of the frames sent in half a second waited in the queue,
//   the bucket gets a token more: a burst that emptied it (after a stall of the transceiver, or a
//   burst of caller audio echoed back) leaves it in step with the backend's frames, each waiting up
//   to 20 ms for the next token, for good. When every frame waited a whole frame or more, those
//   whole frames are dropped as well.
//   Backends that send faster than real time (a TTS burst) are queued as they ask.
import { FRAME_MS, frameBytes, type SampleRate } from '../protocol/backend.ts';
import { ArrivalOrder, type ArrivalOrderOptions } from './arrival-order.ts';
import { type OpusEncoderOptions, OpusFrameDecoder, OpusFrameEncoder } from './opus-codec.ts';
import { PlayoutQueue } from './playout-queue.ts';
import {
  OPUS_RTP_CLOCK_RATE,
  OpusRtpPacketizer,
  type OpusRtpPacketizerOptions,
  type RtpPacketFields,
} from './rtp-packetizer.ts';

const RTP_SAMPLES_PER_MS = OPUS_RTP_CLOCK_RATE / 1000;

export interface AudioBridgeOptions {
  /** The backend's sample rate: what the decoder produces and the encoder takes. */
  sampleRate: SampleRate;
  arrival?: ArrivalOrderOptions;
  /** Most backend audio queued for the caller (default 60 s). */
  maxQueueMs?: number;
  encoder?: OpusEncoderOptions;
  packetizer?: OpusRtpPacketizerOptions;
  /**
   * Frames that may leave back to back after a pause (default 5, 100 ms): whatever a hiccup held
   * back (the backend's, the network's, this process's) goes out at once when it arrives, instead of
   * staying behind as delay for the rest of the talkspurt.
   */
  burstFrames?: number;
  /** DTX frames while the backend is silent, this far apart (default 400 ms, as libopus). */
  dtxIntervalMs?: number;
  /**
   * A frame that waited longer than this in the queue waited (default 1 ms: a frame that finds a
   * token goes in the poll that queued it). Over a quarter of the frames of half a second waiting,
   * while the backend streams in real time, is a standing delay, and is shed.
   */
  maxStandingMs?: number;
}

/** A PCM frame for the backend: decoded audio (with when its packet arrived) or concealment. */
export interface BackendFrame {
  readonly pcm: Buffer;
  /** When the caller's packet arrived (ms), for decoded frames; undefined for concealment. */
  readonly arrivedAt: number | undefined;
}

/** An RTP packet for the caller, with when the backend audio in it arrived (undefined for DTX). */
export interface ClientPacket {
  readonly rtp: RtpPacketFields;
  readonly arrivedAt: number | undefined;
}

export interface AudioBridgeOutput {
  toBackend: BackendFrame[];
  toClient: ClientPacket[];
  /** Backend marks whose audio has now been sent: answer each with a `mark` message. */
  marksReached: string[];
  /** Backend audio dropped by this poll to shed a standing delay (ms; usually 0). */
  shedMs: number;
}

export interface AudioBridgeStats {
  /** RTP packets from the caller handed to `onRtp`. */
  rtpReceived: number;
  framesToBackend: number;
  /** Frames to the backend made up for missing audio (lost, undecodable). */
  concealedFrames: number;
  decodeErrors: number;
  /** Packets decoded, by the Opus bandwidth they carried (OPUS_BANDWIDTHS order; a copy). */
  decodedByBandwidth: number[];
  lost: number;
  /** Frames the caller did not send, in DTX, made up for the backend (not loss). */
  dtx: number;
  late: number;
  duplicate: number;
  resyncs: number;
  /** Packets to the caller carrying backend audio. */
  audioFramesToClient: number;
  /** One-byte DTX packets sent while the backend was silent. */
  dtxFramesToClient: number;
  /** Encoded silence that wound a talkspurt down (after it ended, or a clear). */
  silenceFramesToClient: number;
  queuedMs: number;
  /** Backend audio dropped because the queue was full (ms, total). */
  overflowMs: number;
  /** Backend audio dropped by `clear` (ms, total). */
  clearedMs: number;
  /** Backend audio dropped to shed a standing backlog (ms, total). */
  shedMs: number;
}

/** One-byte Opus packets (TOC only, no frame): "no audio" to every decoder (RFC 6716 §3.2.1). */
const DTX_SILK_WB_20MS = Buffer.from([0x48]);
const STANDING_WINDOW_MS = 500;
/**
 * No backend audio for this long after the last frame sent ends a talkspurt: what comes next starts
 * a new one, stamped with the real time.
 */
const TALKSPURT_END_MS = 2 * FRAME_MS;
/**
 * The wind-down's encoded silence starts this long after the last audio, not when the talkspurt
 * ends: a backend (or its network) 40-80 ms late now and then would otherwise get silence between
 * its frames, a hole the caller hears, where a gap with nothing sent is concealed by the caller's
 * decoder like any late packet. At a real end that decoder conceals this long before the silence.
 */
const WIND_DOWN_AFTER_MS = 4 * FRAME_MS;
/** A gap between polls longer than this is a stall of the process. */
const STALL_MS = 3 * FRAME_MS;
/** Frames the token bucket may hold within a talkspurt (500 ms): how far sending catches up. */
const CATCH_UP_FRAMES = 25;
/** Frames of encoded silence that end a talkspurt before DTX (100 ms). */
const WIND_DOWN_FRAMES = 5;

export class AudioBridge {
  readonly sampleRate: SampleRate;
  readonly #arrival: ArrivalOrder;
  readonly #decoder: OpusFrameDecoder;
  readonly #queue: PlayoutQueue;
  readonly #encoder: OpusFrameEncoder;
  readonly #packetizer: OpusRtpPacketizer;
  readonly #burstFrames: number;
  readonly #dtxIntervalMs: number;
  readonly #maxStandingMs: number;
  /** Frames that may be sent now (a token bucket refilled at one per 20 ms), as of `#tokensAt`. */
  #tokens: number;
  #tokensAt: number | undefined;
  /** When the last packet (audio, silence or DTX) went to the caller. */
  #lastSentAt: number | undefined;
  /** When the first packet went (ms): the RTP clock's origin. */
  #clockAt: number | undefined;
  /** Within a talkspurt: backend audio is flowing (its end is wound down with silence). */
  #talking = false;
  #lastPollAt: number | undefined;
  /** After a stall, a talkspurt is not ended before this (its audio may still be on its way). */
  #endNotBefore = Number.NEGATIVE_INFINITY;
  /** Frames of encoded silence still to send after a talkspurt ended or was cleared. */
  #windDown = 0;
  /** When the wind-down's first frame may go (WIND_DOWN_AFTER_MS after the audio; a clear's at once). */
  #windDownAt = Number.NEGATIVE_INFINITY;
  readonly #silence: Buffer;
  /** When each queued frame's audio arrived (parallel to the queue's whole frames). */
  readonly #arrivals: number[] = [];
  /** When the backend's last audio arrived (a partial frame goes out padded only after a pause). */
  #lastEnqueuedAt = Number.NEGATIVE_INFINITY;
  /**
   * Standing-delay window: its start, the frames sent in it (with an arrival time), how many of
   * them waited, the shortest wait, and the audio that arrived in it.
   */
  #windowStart: number | undefined;
  #windowSent = 0;
  #windowWaited = 0;
  #windowMinWaitMs = Number.POSITIVE_INFINITY;
  #windowArrivedMs = 0;
  #shedDebtMs = 0;
  #stats = {
    rtpReceived: 0,
    framesToBackend: 0,
    audioFramesToClient: 0,
    dtxFramesToClient: 0,
    silenceFramesToClient: 0,
    overflowMs: 0,
    clearedMs: 0,
    shedMs: 0,
  };

  constructor(options: AudioBridgeOptions) {
    this.sampleRate = options.sampleRate;
    this.#arrival = new ArrivalOrder(options.arrival);
    this.#decoder = new OpusFrameDecoder(options.sampleRate);
    this.#queue = new PlayoutQueue(options.sampleRate, { maxDurationMs: options.maxQueueMs ?? 60_000 });
    this.#encoder = new OpusFrameEncoder(options.sampleRate, options.encoder);
    this.#packetizer = new OpusRtpPacketizer(options.packetizer);
    this.#burstFrames = options.burstFrames ?? 5;
    this.#tokens = this.#burstFrames;
    this.#dtxIntervalMs = options.dtxIntervalMs ?? 400;
    this.#maxStandingMs = options.maxStandingMs ?? 1;
    this.#silence = Buffer.alloc(frameBytes(options.sampleRate));
  }

  /** An RTP packet from the caller (its payload: one Opus packet): frames for the backend now. */
  onRtp(sequenceNumber: number, timestamp: number, payload: Buffer, arrivedAt: number): BackendFrame[] {
    this.#stats.rtpReceived++;
    return this.#toBackend(this.#arrival.push(sequenceNumber, timestamp, payload, arrivedAt));
  }

  /** Queues backend audio (PCM16LE, any even length) that arrived at `now`. Returns ms dropped (overflow). */
  enqueueBackendAudio(pcm: Buffer, now: number): number {
    const wholeBefore = this.#queue.wholeFrames;
    const droppedMs = this.#queue.enqueue(pcm);
    this.#stats.overflowMs += droppedMs;
    // Arrival times follow the queue's whole frames: overflow dropped the oldest ones.
    this.#arrivals.splice(0, Math.min(this.#arrivals.length, Math.round(droppedMs / FRAME_MS)));
    for (
      let added = this.#queue.wholeFrames - wholeBefore + Math.round(droppedMs / FRAME_MS);
      added > 0;
      added--
    )
      this.#arrivals.push(now);
    this.#lastEnqueuedAt = now;
    this.#windowArrivedMs += (pcm.length / frameBytes(this.sampleRate)) * FRAME_MS;
    return droppedMs;
  }

  /** A backend mark: reached once the audio queued before it has been sent. */
  mark(name: string): void {
    this.#queue.mark(name);
  }

  /** Barge-in: drops all queued backend audio. Returns the pending marks, to answer now. */
  clear(): string[] {
    this.#stats.clearedMs += this.#queue.queuedMs;
    this.#arrivals.length = 0;
    this.#shedDebtMs = 0;
    // The cut is wound down with encoded silence at once (the caller must not hear the cleared
    // audio's tail concealed); what comes next starts a talkspurt.
    if (this.#talking) {
      this.#windDown = WIND_DOWN_FRAMES;
      this.#windDownAt = Number.NEGATIVE_INFINITY;
    }
    this.#talking = false;
    return this.#queue.clear();
  }

  /** What is due at `now`: concealment for certain losses, packets for the caller, marks. */
  poll(now: number): AudioBridgeOutput {
    // A gap in polling is a stall of this process (a talkspurt is polled at least every 40 ms): the
    // backend's audio of the stall is still in the socket, so the talkspurt has not ended yet.
    if (this.#lastPollAt !== undefined && now - this.#lastPollAt > STALL_MS)
      this.#endNotBefore = now + TALKSPURT_END_MS;
    this.#lastPollAt = now;
    const toBackend = this.#toBackend(this.#arrival.poll(now));
    const toClient: ClientPacket[] = [];
    const marksReached: string[] = [];
    let shedMs = 0;
    for (let sent = 0; sent < CATCH_UP_FRAMES; sent++) {
      if (!this.#frameReady(now) || !this.#hasToken(now)) break;
      const arrivedAt = this.#arrivals.shift();
      const { frame, marksReached: reached } = this.#queue.next();
      marksReached.push(...reached);
      if (frame === undefined) break;
      if (this.#shedDebtMs >= FRAME_MS && this.#queue.queuedMs > 0) {
        // Shedding: this frame is dropped, the next one takes its slot.
        this.#shedDebtMs -= FRAME_MS;
        this.#stats.shedMs += FRAME_MS;
        shedMs += FRAME_MS;
        sent--;
        continue;
      }
      if (arrivedAt !== undefined) this.#countWait(now - arrivedAt);
      const kind = this.#talking ? 'audio' : 'talkspurt';
      toClient.push({ rtp: this.#packet(this.#encoder.encode(frame), now, kind), arrivedAt });
      this.#talking = true;
      // A wind-down not finished when the audio resumed ends there: its silence would otherwise go
      // out between this talkspurt's frames whenever one is a little late (the call polls on every
      // event), each a gap the caller hears and a frame of delay for the rest of the talkspurt.
      this.#windDown = 0;
      this.#stats.audioFramesToClient++;
      this.#tokens -= 1;
    }
    this.#watchBacklog(now);
    if (!this.#frameReady(now)) {
      marksReached.push(...this.#queue.takeReachedMarks());
      // The talkspurt is over only once the next frame is overdue: a backend streaming in real
      // time leaves the queue empty between its frames.
      const sinceLast = this.#lastSentAt === undefined ? Number.POSITIVE_INFINITY : now - this.#lastSentAt;
      if (this.#talking && sinceLast >= TALKSPURT_END_MS && now >= this.#endNotBefore) {
        this.#talking = false;
        this.#windDown = WIND_DOWN_FRAMES;
        this.#windDownAt = this.#lastSentAt! + WIND_DOWN_AFTER_MS;
      }
      if (this.#windDown > 0 && sinceLast >= FRAME_MS && now >= this.#windDownAt && this.#hasToken(now)) {
        // Encoded silence through the live encoder first, as libopus does before it goes DTX: it
        // winds the audio down instead of leaving the caller's decoder to conceal its tail.
        toClient.push({
          rtp: this.#packet(this.#encoder.encode(this.#silence), now, 'silence'),
          arrivedAt: undefined,
        });
        this.#stats.silenceFramesToClient++;
        this.#windDown--;
        this.#tokens -= 1;
      } else if (this.#windDown === 0 && sinceLast >= this.#dtxIntervalMs && this.#hasToken(now)) {
        // Then a DTX frame every dtxIntervalMs.
        toClient.push({ rtp: this.#packet(DTX_SILK_WB_20MS, now, 'silence'), arrivedAt: undefined });
        this.#stats.dtxFramesToClient++;
        this.#tokens -= 1;
      }
    }
    return { toBackend, toClient, marksReached, shedMs };
  }

  /** When `poll` next has work (ms): the next slot, the next DTX frame, or a loss to conceal. */
  get wakeAt(): number {
    let at = this.#arrival.wakeAt ?? Number.POSITIVE_INFINITY;
    if (this.#queue.wholeFrames > 0) at = Math.min(at, this.#tokenAt);
    else if (this.#queue.queuedMs > 0)
      at = Math.min(at, Math.max(this.#tokenAt, this.#lastEnqueuedAt + FRAME_MS));
    else if (this.#talking)
      at = Math.min(
        at,
        Math.max(this.#tokenAt, (this.#lastSentAt ?? 0) + TALKSPURT_END_MS, this.#endNotBefore),
      );
    else if (this.#windDown > 0)
      at = Math.min(at, Math.max(this.#tokenAt, (this.#lastSentAt ?? 0) + FRAME_MS, this.#windDownAt));
    else at = Math.min(at, (this.#lastSentAt ?? Number.NEGATIVE_INFINITY) + this.#dtxIntervalMs);
    return at;
  }

  /** Backend audio waiting to be played to the caller (ms). */
  get queuedMs(): number {
    return this.#queue.queuedMs;
  }

  get stats(): AudioBridgeStats {
    const order = this.#arrival.counters;
    const decoder = this.#decoder.stats;
    return {
      ...this.#stats,
      framesToBackend: order.delivered + order.lost,
      concealedFrames: decoder.concealed,
      decodeErrors: decoder.decodeErrors,
      decodedByBandwidth: [...decoder.decodedByBandwidth],
      lost: order.lost,
      dtx: order.dtx,
      late: order.late,
      duplicate: order.duplicate,
      resyncs: order.resyncs,
      queuedMs: this.#queue.queuedMs,
    };
  }

  /** A whole frame is queued, or a partial one whose rest has not come for a frame's time. */
  #frameReady(now: number): boolean {
    if (this.#queue.wholeFrames > 0) return true;
    return this.#queue.queuedMs > 0 && now - this.#lastEnqueuedAt >= FRAME_MS;
  }

  #toBackend(deliveries: ReturnType<ArrivalOrder['push']>): BackendFrame[] {
    return deliveries.map((delivery) =>
      delivery.kind === 'packet'
        ? { pcm: this.#decoder.decode(delivery.payload), arrivedAt: delivery.arrivedAt }
        : { pcm: this.#decoder.conceal(), arrivedAt: undefined },
    );
  }

  /**
   * Whether a frame may go now. The bucket holds `burstFrames` at a talkspurt's start (a TTS burst
   * is paced after its first 100 ms), but up to CATCH_UP_FRAMES within a talkspurt: what a stall
   * held back goes out as soon as it is there, instead of the queue staying one stall behind.
   */
  #hasToken(now: number): boolean {
    const cap = this.#talking ? CATCH_UP_FRAMES : this.#burstFrames;
    if (this.#tokensAt !== undefined)
      this.#tokens = Math.min(Math.max(cap, this.#tokens), this.#tokens + (now - this.#tokensAt) / FRAME_MS);
    if (this.#tokens > cap && !this.#talking) this.#tokens = cap;
    this.#tokensAt = now;
    return this.#tokens >= 1;
  }

  /** When the bucket next holds a whole token. */
  get #tokenAt(): number {
    if (this.#tokensAt === undefined || this.#tokens >= 1) return Number.NEGATIVE_INFINITY;
    return this.#tokensAt + (1 - this.#tokens) * FRAME_MS;
  }

  /**
   * The RTP packet for `payload` sent at `now`. Within a talkspurt (`audio`) timestamps follow the
   * audio, one frame each, whenever the frames leave. Any other packet (the first audio of a
   * talkspurt, the encoded silence that winds one down, a DTX frame) is stamped with the real time
   * since the call's first packet, never behind the last stamp: RTP timestamps are when the audio
   * was sampled, and what a talkspurt fell behind (frames late from the backend, the 40 ms before its
   * end is certain) must not carry into the next one. Each talkspurt used to leave the timeline
   * 20 ms further behind real time, which a receiver reads as its packets arriving later and later.
   */
  #packet(payload: Buffer, now: number, kind: 'audio' | 'talkspurt' | 'silence'): RtpPacketFields {
    this.#clockAt ??= now;
    if (kind !== 'audio') this.#packetizer.catchUpTo(Math.round((now - this.#clockAt) * RTP_SAMPLES_PER_MS));
    this.#lastSentAt = now;
    return this.#packetizer.packetize(payload, kind === 'talkspurt');
  }

  #countWait(waitMs: number): void {
    this.#windowSent++;
    if (waitMs > this.#maxStandingMs) this.#windowWaited++;
    this.#windowMinWaitMs = Math.min(this.#windowMinWaitMs, waitMs);
  }

  /**
   * Watches for a standing delay over each half second. Real-time arrival with over a quarter of
   * the frames waiting means the bucket is in step with the backend (nothing the backend asked
   * for): it gets a token, so frames go as they arrive again (the backend's jitter lets some through
   * in any case, hence not "all"); when every frame waited a whole frame or more, those whole frames
   * are dropped too. A token at most every half second sends at most 4 % ahead of real time.
   */
  #watchBacklog(now: number): void {
    if (this.#windowStart === undefined) this.#windowStart = now;
    if (now - this.#windowStart < STANDING_WINDOW_MS) return;
    const elapsed = now - this.#windowStart;
    const realTime = this.#windowArrivedMs >= 0.8 * elapsed && this.#windowArrivedMs <= 1.25 * elapsed;
    if (realTime && this.#windowWaited > this.#windowSent / 4) {
      this.#tokens += 1;
      this.#shedDebtMs = Math.floor(this.#windowMinWaitMs / FRAME_MS) * FRAME_MS;
    }
    this.#windowStart = now;
    this.#windowSent = 0;
    this.#windowWaited = 0;
    this.#windowMinWaitMs = Number.POSITIVE_INFINITY;
    this.#windowArrivedMs = 0;
  }
}
