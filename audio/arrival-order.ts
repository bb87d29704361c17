// The caller → backend order of one call: the client's packets are handed on the moment they arrive,
// in sequence, with losses filled in. No playout hold: a backend (speech recognition, a
// speech-to-speech model) does not play audio to a person, it needs the user's audio as soon as it
// exists. Sans-I/O: `push` on every packet, `poll` from the call's timer, both with the time.
//
// - The next expected packet is delivered at once, then any held packets that follow it.
// - A packet ahead of a gap is held; the gap is declared lost when a packet two or more further
//   arrives, or when the held packet has waited `reorderWaitMs` (reordering on real paths is rare
//   and short: waiting longer only adds latency to every loss).
// - A packet that does not arrive at all (the caller's last ones, a burst of loss) is declared lost
//   `lossWaitMs` after it was due, judged from the arrival of the packets before it: from then on
//   the backend gets a frame every 20 ms whatever the network does.
// - A packet behind the delivered sequence (too late, or a duplicate) is dropped and counted.
// - A jump of more than `maxGap` packets (the client restarted its stream) starts over from it.
// - After a long silence of the path (a relay restarted, a NAT rebound) the concealment, which
//   follows real time, may have run ahead of the client's sequence: packets then arrive for slots
//   already concealed. `resyncAfterLate` of those in a row restart the order at them.
// - A client in DTX (RFC 7587 §3.1.3; a browser does it when the answer says `usedtx=1`) sends
//   nothing while its user is silent, a packet every 400 ms at most: the slots go on being made up
//   in real time as for a loss. Its next packet continues the sequence with the RTP timestamp moved
//   on by the pause, so nothing was lost: the slots made up since its last packet are counted as
//   `dtx`, not `lost`, and the order restarts at it at once (it is the user speaking again; the
//   concealment that covered the pause has usually run ahead of its sequence number).
import { FRAME_MS } from '../protocol/backend.ts';

export interface ArrivalOrderOptions {
  /** How long a packet ahead of a gap waits for the missing one (default 10 ms). */
  reorderWaitMs?: number;
  /** How long after it was due a missing packet with nothing behind it is declared lost (default 20 ms). */
  lossWaitMs?: number;
  /** Held packets at most (default 16); more ahead of a gap declares the gap lost. */
  maxHeld?: number;
  /** Larger sequence jumps restart the order (default 50 packets, 1 s). */
  maxGap?: number;
  /** Losses concealed in one poll at most (default 5): after a stall, older ones are skipped. */
  maxConcealPerPoll?: number;
  /** Packets in a row for slots already concealed that restart the order (default 3). */
  resyncAfterLate?: number;
  /** RTP timestamp ticks per 20 ms frame (default 960: Opus's 48 kHz clock). */
  ticksPerFrame?: number;
}

export type Delivery =
  | { readonly kind: 'packet'; readonly payload: Buffer; readonly arrivedAt: number }
  | { readonly kind: 'lost' };

export interface ArrivalOrderCounters {
  delivered: number;
  lost: number;
  /** Slots made up while the client sent nothing in DTX (its sequence went on unbroken). */
  dtx: number;
  late: number;
  duplicate: number;
  resyncs: number;
}

/** Real packets remembered to tell a duplicate from a late packet. */
const RECENT = 64;

/** Signed distance from `b` to `a` in 16-bit sequence space. */
function seqDiff(a: number, b: number): number {
  return ((a - b + 0x8000) & 0xffff) - 0x8000;
}

/** Signed distance from `b` to `a` in 32-bit RTP timestamp space. */
function timestampDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class ArrivalOrder {
  readonly #reorderWaitMs: number;
  readonly #lossWaitMs: number;
  readonly #maxHeld: number;
  readonly #maxGap: number;
  readonly #maxConcealPerPoll: number;
  readonly #resyncAfterLate: number;
  readonly #ticksPerFrame: number;
  /** The last sequence number delivered from a real packet (not concealed), and its RTP timestamp. */
  #lastReal = 0;
  #lastRealTimestamp = 0;
  /** Slots made up since that packet: a DTX pause's, once the next packet shows nothing was lost. */
  #concealedSinceReal = 0;
  /** When the first packet arrived, and the frames handed on since (packets and made up). */
  #startedAt = 0;
  #framesOut = 0;
  /** Sequence numbers recently delivered from real packets (a duplicate is one of these). */
  readonly #recent = new Set<number>();
  /** Packets in a row that came for slots already concealed. */
  #lateRun = 0;
  /** The sequence number to deliver next; undefined before the first packet. */
  #next: number | undefined;
  /** When `#next` is due: the arrival of the packet before it plus 20 ms per packet. */
  #nextDueAt = 0;
  readonly #held = new Map<number, { timestamp: number; payload: Buffer; arrivedAt: number }>();
  readonly counters: ArrivalOrderCounters = {
    delivered: 0,
    lost: 0,
    dtx: 0,
    late: 0,
    duplicate: 0,
    resyncs: 0,
  };

  constructor(options: ArrivalOrderOptions = {}) {
    this.#reorderWaitMs = options.reorderWaitMs ?? 10;
    this.#lossWaitMs = options.lossWaitMs ?? 20;
    this.#maxHeld = options.maxHeld ?? 16;
    this.#maxGap = options.maxGap ?? 50;
    this.#maxConcealPerPoll = options.maxConcealPerPoll ?? 5;
    this.#resyncAfterLate = options.resyncAfterLate ?? 3;
    this.#ticksPerFrame = options.ticksPerFrame ?? 960;
  }

  /** Whether the caller's audio has started (from then on the backend gets 50 frames/s). */
  get started(): boolean {
    return this.#next !== undefined;
  }

  /** A packet from the caller: what to hand to the backend now, in order. */
  push(sequenceNumber: number, timestamp: number, payload: Buffer, arrivedAt: number): Delivery[] {
    const out: Delivery[] = [];
    if (this.#next === undefined) {
      this.#startedAt = arrivedAt;
      this.#restartAt(out, sequenceNumber, timestamp, payload, arrivedAt);
      return out;
    }
    const ahead = seqDiff(sequenceNumber, this.#next);
    if (ahead <= 0 && this.#endsDtxPause(out, sequenceNumber, timestamp, arrivedAt)) {
      this.#restartAt(out, sequenceNumber, timestamp, payload, arrivedAt);
      return out;
    }
    if (ahead < 0) {
      if (this.#recent.has(sequenceNumber)) {
        this.counters.duplicate++;
        return out;
      }
      if (seqDiff(sequenceNumber, this.#lastReal) < 0) {
        this.counters.late++;
        return out;
      }
      // A slot already concealed: late, or the concealment ran ahead of the client.
      if (++this.#lateRun < this.#resyncAfterLate) {
        this.counters.late++;
        return out;
      }
    }
    if (ahead < 0 || ahead > this.#maxGap) {
      this.counters.resyncs++;
      this.#restartAt(out, sequenceNumber, timestamp, payload, arrivedAt);
      return out;
    }
    if (ahead === 0) {
      this.#deliver(out, timestamp, payload, arrivedAt);
      this.#drainHeld(out);
      return out;
    }
    if (this.#held.has(sequenceNumber)) {
      this.counters.duplicate++;
      return out;
    }
    this.#held.set(sequenceNumber, { timestamp, payload, arrivedAt });
    // Two or more packets beyond the gap (or too many held): the gap is loss, not reordering.
    if (ahead >= 2 || this.#held.size > this.#maxHeld) this.#concealToHeld(out);
    return out;
  }

  /** Losses that are now certain (held too long, or overdue with nothing behind them). */
  poll(now: number): Delivery[] {
    const out: Delivery[] = [];
    if (this.#next === undefined) return out;
    if (this.#held.size > 0) {
      const oldest = Math.min(...[...this.#held.values()].map((held) => held.arrivedAt));
      if (now - oldest >= this.#reorderWaitMs) this.#concealToHeld(out);
      return out;
    }
    let concealed = 0;
    while (now >= this.#nextDueAt + this.#lossWaitMs) {
      if (concealed === this.#maxConcealPerPoll) {
        // A stall: what is that old is no use to anyone now; carry on from the present.
        const skipped = Math.floor((now - this.#nextDueAt) / FRAME_MS);
        this.#next = (this.#next + skipped) & 0xffff;
        this.#nextDueAt += skipped * FRAME_MS;
        break;
      }
      this.#lose(out);
      concealed++;
    }
    return out;
  }

  /** When `poll` next has something to do (ms), or undefined before the first packet. */
  get wakeAt(): number | undefined {
    if (this.#next === undefined) return undefined;
    if (this.#held.size > 0)
      return Math.min(...[...this.#held.values()].map((held) => held.arrivedAt)) + this.#reorderWaitMs;
    return this.#nextDueAt + this.#lossWaitMs;
  }

  /**
   * Whether a packet for a slot already made up is the end of a DTX pause: the one after the last
   * real packet, timestamped two frames or more after it. The slots made up since are the pause's,
   * as many as its timestamp skipped (more would be loss: the client's clock says so). Those the
   * concealment has not reached yet (it runs `lossWaitMs` behind) are made up now, so the backend's
   * frames stay in step with the client's timeline; never more than real time since the first
   * packet has made due, one frame of jitter allowed (a client's timestamps cannot make the backend
   * get more than 50 frames a second).
   */
  #endsDtxPause(out: Delivery[], sequenceNumber: number, timestamp: number, arrivedAt: number): boolean {
    if (sequenceNumber !== ((this.#lastReal + 1) & 0xffff)) return false;
    const skipped = Math.round(timestampDiff(timestamp, this.#lastRealTimestamp) / this.#ticksPerFrame) - 1;
    if (skipped < 1) return false;
    const paused = Math.min(skipped, this.#concealedSinceReal);
    this.counters.lost -= paused;
    this.counters.dtx += paused;
    // Frames due by now (the packet's own excluded), one of jitter allowed, against those given.
    const due = Math.floor((arrivedAt - this.#startedAt) / FRAME_MS) + 1 - this.#framesOut;
    for (let i = Math.min(skipped - paused, due, this.#maxConcealPerPoll); i > 0; i--) {
      out.push({ kind: 'lost' });
      this.counters.dtx++;
      this.#framesOut++;
    }
    return true;
  }

  /** Restarts the order at this packet: whatever was held is dropped, and it goes now. */
  #restartAt(
    out: Delivery[],
    sequenceNumber: number,
    timestamp: number,
    payload: Buffer,
    arrivedAt: number,
  ): void {
    this.#held.clear();
    this.#next = sequenceNumber;
    this.#deliver(out, timestamp, payload, arrivedAt);
  }

  #deliver(out: Delivery[], timestamp: number, payload: Buffer, arrivedAt: number): void {
    out.push({ kind: 'packet', payload, arrivedAt });
    this.counters.delivered++;
    this.#framesOut++;
    this.#lastReal = this.#next!;
    this.#lastRealTimestamp = timestamp;
    this.#concealedSinceReal = 0;
    this.#lateRun = 0;
    this.#recent.add(this.#next!);
    if (this.#recent.size > RECENT) this.#recent.delete(this.#recent.values().next().value!);
    this.#next = (this.#next! + 1) & 0xffff;
    this.#nextDueAt = arrivedAt + FRAME_MS;
  }

  #lose(out: Delivery[]): void {
    out.push({ kind: 'lost' });
    this.counters.lost++;
    this.#framesOut++;
    this.#concealedSinceReal++;
    this.#next = (this.#next! + 1) & 0xffff;
    this.#nextDueAt += FRAME_MS;
  }

  /** Declares every missing packet before the first held one lost, then delivers what follows. */
  #concealToHeld(out: Delivery[]): void {
    while (this.#held.size > 0 && !this.#held.has(this.#next!)) this.#lose(out);
    this.#drainHeld(out);
  }

  #drainHeld(out: Delivery[]): void {
    for (let held = this.#held.get(this.#next!); held !== undefined; held = this.#held.get(this.#next!)) {
      this.#held.delete(this.#next!);
      this.#deliver(out, held.timestamp, held.payload, held.arrivedAt);
    }
  }
}
