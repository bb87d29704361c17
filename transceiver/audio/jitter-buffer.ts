// Reorder/jitter buffer for the caller's RTP audio: packets go in as they arrive, one 20 ms frame
// comes out per tick in sequence order, a fixed small delay behind the network. Sans-I/O: the
// caller passes the time of each arrival and each tick and owns the clock.
//
// How it plays:
// - Buffering: after the first packet (and after an underrun or a resync) playout waits
//   `targetDelayMs` from the next packet's arrival, so jitter up to about that much is absorbed.
//   Until playout starts, a packet reordered before the first one becomes the first.
// - Playing: each `pop` returns the next sequence number's payload; if it is missing while later
//   packets are waiting it is declared lost (the caller conceals it) and playout moves on. A packet
//   arriving for a sequence number already played or skipped is late: dropped and counted.
// - Underrun: nothing at all is buffered when a frame is due. The sequence number is not skipped
//   (the packet is more likely delayed than lost) and playout buffers again; that is where the
//   delay grows after a jitter spike. `pop` returns undefined and the caller conceals. Playout
//   resumes at the oldest packet that came: slots of any still missing were already concealed.
// - Bounded delay: audio never queues past `maxDelayMs` (a packet that far ahead of playout moves
//   playout up to it, dropping what it passes), and when for a whole second every tick found at
//   least two frames more than the target buffered (after a burst, or with a sender clock running
//   fast), the excess is dropped at once. So the delay settles back to the target after a spike.
// - Resync: a sequence number more than `resyncAfterMs` of audio away in either direction, or a
//   long run of late packets, means a new stream (a restarted sender): start over from it.
//
// Sequence numbers are 16-bit and wrap; all comparisons are modulo 2^16 relative to the next one to
// play. The RTP timestamp is carried along, not interpreted: with 20 ms packets the sequence
// number alone orders them, and it stays consecutive across the sender's silence (DTX).
import { FRAME_MS } from '../../protocol/backend.ts';

export interface JitterBufferOptions {
  /** Delay before playout starts, absorbing that much jitter (default 40 ms). */
  targetDelayMs?: number;
  /** Most audio ever held (default 200 ms); bounds memory and the worst-case delay. */
  maxDelayMs?: number;
  /** A sequence jump of more than this much audio restarts the buffer (default 1000 ms). */
  resyncAfterMs?: number;
}

export type JitterBufferOutput =
  | { kind: 'frame'; payload: Buffer; sequenceNumber: number; timestamp: number }
  | { kind: 'lost'; sequenceNumber: number };

export interface JitterBufferCounters {
  /** Every packet pushed. */
  received: number;
  /** Sequence numbers skipped without ever being played (never arrived in time). */
  lost: number;
  /** Packets that arrived after their sequence number was played or skipped (dropped). */
  late: number;
  /** Second copies of a packet still buffered (dropped). */
  duplicate: number;
  /** Buffered packets thrown away to bound the delay (window moved, excess trimmed, resync). */
  dropped: number;
  /** Ticks where nothing at all was buffered while playing. */
  underruns: number;
  /** Restarts on a new stream. */
  resyncs: number;
}

/** Consecutive late packets that mean the sender went back in sequence for good. */
const LATE_RUN_RESYNC = 25;
/** Ticks in a row with excess delay before it is trimmed (one second). */
const TRIM_WINDOW_TICKS = 1000 / FRAME_MS;

interface BufferedPacket {
  payload: Buffer;
  timestamp: number;
}

/** a − b in sequence space, in [−32768, 32767]. */
export function sequenceDelta(a: number, b: number): number {
  return ((a - b + 0x8000) & 0xffff) - 0x8000;
}

export class JitterBuffer {
  readonly targetFrames: number;
  readonly capacityFrames: number;
  readonly resyncFrames: number;
  readonly #packets = new Map<number, BufferedPacket>();
  /** Next sequence number to play; undefined until the first packet. */
  #next: number | undefined;
  /** When playout (re)starts; undefined while buffering waits for a packet to arrive. */
  #playAtMs: number | undefined;
  #lateRun = 0;
  #resumingAfterUnderrun = false;
  /** Whether playout has moved (played or skipped) since the last (re)start. */
  #playoutMoved = false;
  #trimWindowTicks = 0;
  #trimWindowMinDepth = Number.POSITIVE_INFINITY;
  readonly #counters: JitterBufferCounters = {
    received: 0,
    lost: 0,
    late: 0,
    duplicate: 0,
    dropped: 0,
    underruns: 0,
    resyncs: 0,
  };

  constructor(options: JitterBufferOptions = {}) {
    this.targetFrames = Math.max(1, Math.ceil((options.targetDelayMs ?? 40) / FRAME_MS));
    this.capacityFrames = Math.max(this.targetFrames + 2, Math.ceil((options.maxDelayMs ?? 200) / FRAME_MS));
    this.resyncFrames = Math.max(this.capacityFrames, Math.ceil((options.resyncAfterMs ?? 1000) / FRAME_MS));
  }

  get counters(): Readonly<JitterBufferCounters> {
    return this.#counters;
  }

  /** Packets held now (never more than `capacityFrames`). */
  get size(): number {
    return this.#packets.size;
  }

  push(sequenceNumber: number, timestamp: number, payload: Buffer, nowMs: number): void {
    this.#counters.received++;
    const sequence = sequenceNumber & 0xffff;
    if (this.#next === undefined) {
      this.#restart(sequence, nowMs);
    } else {
      const delta = sequenceDelta(sequence, this.#next);
      if (delta > this.resyncFrames || delta < -this.resyncFrames) {
        this.#resync(sequence, nowMs);
      } else if (delta < 0 && this.#canStartEarlier(delta)) {
        // Reordered before playout began: the stream starts with this packet instead.
        this.#next = sequence;
      } else if (delta < 0) {
        if (++this.#lateRun < LATE_RUN_RESYNC) {
          this.#counters.late++;
          return;
        }
        this.#resync(sequence, nowMs);
      } else if (this.#packets.has(sequence)) {
        this.#counters.duplicate++;
        return;
      } else if (delta >= this.capacityFrames) {
        // Playout fell too far behind the sender: jump to `targetFrames` behind this packet.
        this.#skip(delta - this.targetFrames + 1);
      }
    }
    this.#lateRun = 0;
    this.#packets.set(sequence, { payload, timestamp });
    this.#playAtMs ??= nowMs + this.targetFrames * FRAME_MS;
  }

  /**
   * What to play for the tick at `nowMs` (call once per 20 ms): the next frame, a lost one to
   * conceal, or undefined when nothing is due (not started, buffering, or underrun).
   */
  pop(nowMs: number): JitterBufferOutput | undefined {
    if (this.#next === undefined || this.#playAtMs === undefined || nowMs < this.#playAtMs) return undefined;
    if (this.#packets.size === 0) {
      this.#counters.underruns++;
      this.#playAtMs = undefined;
      this.#resumingAfterUnderrun = true;
      this.#resetTrimWindow();
      return undefined;
    }
    if (this.#resumingAfterUnderrun) {
      // The ticks spent waiting were already concealed: the slots of packets still missing have
      // passed, so playout goes straight to the oldest one that arrived.
      this.#resumingAfterUnderrun = false;
      while (!this.#packets.has(this.#next)) this.#passNext();
    }
    this.#playoutMoved = true;
    this.#trimExcessDelay();
    const sequenceNumber = this.#next!;
    this.#next = (sequenceNumber + 1) & 0xffff;
    const packet = this.#packets.get(sequenceNumber);
    if (packet === undefined) {
      this.#counters.lost++;
      return { kind: 'lost', sequenceNumber };
    }
    this.#packets.delete(sequenceNumber);
    return { kind: 'frame', payload: packet.payload, sequenceNumber, timestamp: packet.timestamp };
  }

  /**
   * Whether a packet `delta` (< 0) before the first one can still become the first: nothing was
   * played or skipped since the (re)start, and everything buffered stays within capacity of it.
   */
  #canStartEarlier(delta: number): boolean {
    if (this.#playoutMoved) return false;
    for (const buffered of this.#packets.keys()) {
      if (sequenceDelta(buffered, this.#next!) - delta >= this.capacityFrames) return false;
    }
    return true;
  }

  #restart(sequence: number, nowMs: number): void {
    this.#packets.clear();
    this.#playoutMoved = false;
    this.#next = sequence;
    this.#playAtMs = nowMs + this.targetFrames * FRAME_MS;
    this.#lateRun = 0;
    this.#resumingAfterUnderrun = false;
    this.#resetTrimWindow();
  }

  #resync(sequence: number, nowMs: number): void {
    this.#counters.resyncs++;
    this.#counters.dropped += this.#packets.size;
    this.#restart(sequence, nowMs);
  }

  /**
   * Moves playout past the next sequence number without playing it: a buffered packet is dropped
   * (true), a missing one is lost.
   */
  #passNext(): boolean {
    const sequence = this.#next!;
    this.#next = (sequence + 1) & 0xffff;
    if (this.#packets.delete(sequence)) {
      this.#counters.dropped++;
      return true;
    }
    this.#counters.lost++;
    return false;
  }

  /** Moves playout `count` sequence numbers on. */
  #skip(count: number): void {
    this.#playoutMoved = true;
    for (let i = 0; i < count; i++) this.#passNext();
    this.#resetTrimWindow();
  }

  /**
   * If the buffer held at least `targetFrames + 2` packets at every tick for the last second, the
   * frames beyond `targetFrames + 1` were never needed to ride out jitter: drop them (one click
   * beats a permanently longer delay). One frame of slack stops it trimming back and forth.
   */
  #trimExcessDelay(): void {
    const depth = this.#packets.size;
    if (depth < this.targetFrames + 2) {
      this.#resetTrimWindow();
      return;
    }
    this.#trimWindowMinDepth = Math.min(this.#trimWindowMinDepth, depth);
    if (++this.#trimWindowTicks < TRIM_WINDOW_TICKS) return;
    const excess = this.#trimWindowMinDepth - (this.targetFrames + 1);
    if (excess > 0) this.#skipBuffered(excess);
    this.#resetTrimWindow();
  }

  /** Moves playout past `count` buffered packets (and the gaps between them). */
  #skipBuffered(count: number): void {
    let dropped = 0;
    while (dropped < count && this.#packets.size > 0) if (this.#passNext()) dropped++;
  }

  #resetTrimWindow(): void {
    this.#trimWindowTicks = 0;
    this.#trimWindowMinDepth = Number.POSITIVE_INFINITY;
  }
}
