// The backend → caller audio queue of one call. The backend sends PCM in chunks of any size and
// rhythm; this cuts it into 20 ms frames and hands out one per tick, tracking the backend's marks
// (positions in the stream) so each is answered once the audio before it has been sent. Sans-I/O:
// the pacer owns the ticks.
//
// Positions are counted in bytes of backend audio since the call started (`enqueued` at the tail,
// `played` at the head), so a mark is just a position and never needs to split a frame.
import { FRAME_MS, frameBytes, type SampleRate } from '../protocol/backend.ts';

export interface PlayoutQueueOptions {
  /** Most audio held (default 60 s); beyond it the oldest audio is dropped. */
  maxDurationMs?: number;
}

export interface PlayoutTick {
  /** The next 20 ms frame, or undefined when nothing is queued (the caller sends silence). */
  frame: Buffer | undefined;
  /** Marks whose audio has now all been sent (or dropped by overflow), in order. */
  marksReached: string[];
}

interface Mark {
  name: string;
  /** Stream position (bytes) the mark follows. */
  position: number;
}

export class PlayoutQueue {
  readonly frameBytes: number;
  readonly #bytesPerMs: number;
  readonly #maxBytes: number;
  /** Whole frames waiting, oldest first from `#head` (an array with a moving head: O(1) dequeue). */
  #frames: (Buffer | undefined)[] = [];
  #head = 0;
  /** Trailing bytes short of a whole frame. */
  #partial: Buffer = Buffer.alloc(0);
  #marks: Mark[] = [];
  #enqueuedBytes = 0;
  #playedBytes = 0;

  constructor(sampleRate: SampleRate, options: PlayoutQueueOptions = {}) {
    this.frameBytes = frameBytes(sampleRate);
    this.#bytesPerMs = this.frameBytes / FRAME_MS;
    const maxDurationMs = options.maxDurationMs ?? 60_000;
    if (maxDurationMs < FRAME_MS) throw new RangeError(`maxDurationMs must be at least ${FRAME_MS}`);
    this.#maxBytes = Math.floor(maxDurationMs / FRAME_MS) * this.frameBytes;
  }

  /** Audio waiting to be sent, in milliseconds. */
  get queuedMs(): number {
    return this.#queuedBytes / this.#bytesPerMs;
  }

  /** Whole 20 ms frames waiting (a partial frame at the tail not counted). */
  get wholeFrames(): number {
    return this.#frames.length - this.#head;
  }

  /** Marks waiting for their audio to be sent. */
  get pendingMarks(): number {
    return this.#marks.length;
  }

  get #queuedBytes(): number {
    return this.#enqueuedBytes - this.#playedBytes;
  }

  /**
   * Queues PCM16LE mono (any even length). Returns how many milliseconds of the oldest audio were
   * dropped to stay within `maxDurationMs` (0 normally); marks passed that way are reported by the
   * next `next()`, as if played.
   */
  enqueue(pcm: Buffer): number {
    if (pcm.length % 2 !== 0) throw new RangeError(`PCM16 audio has an even length, got ${pcm.length} bytes`);
    this.#enqueuedBytes += pcm.length;
    let offset = 0;
    if (this.#partial.length > 0) {
      offset = Math.min(this.frameBytes - this.#partial.length, pcm.length);
      this.#partial = Buffer.concat([this.#partial, pcm.subarray(0, offset)]);
      if (this.#partial.length < this.frameBytes) return this.#dropOverflow();
      this.#frames.push(this.#partial);
      this.#partial = Buffer.alloc(0);
    }
    for (; offset + this.frameBytes <= pcm.length; offset += this.frameBytes) {
      // Copied: the caller's buffer (a WebSocket message) may be reused or be a view on more.
      this.#frames.push(Buffer.from(pcm.subarray(offset, offset + this.frameBytes)));
    }
    this.#partial = Buffer.from(pcm.subarray(offset));
    return this.#dropOverflow();
  }

  /** Records a mark at the current end of the queue. */
  mark(name: string): void {
    this.#marks.push({ name, position: this.#enqueuedBytes });
  }

  /**
   * Drops every queued sample at once (barge-in). Returns the marks that were pending: they will
   * never be reached by playing, so the caller answers them now.
   */
  clear(): string[] {
    const pending = this.#marks.map((mark) => mark.name);
    this.#frames = [];
    this.#head = 0;
    this.#partial = Buffer.alloc(0);
    this.#marks = [];
    this.#playedBytes = this.#enqueuedBytes;
    return pending;
  }

  /**
   * The frame for this 20 ms tick and the marks that became reached with it.
   *
   * When only a partial frame is left it goes out padded with silence rather than waiting for the
   * rest: a backend that paused mid-frame (the end of an utterance) must not leave its last
   * milliseconds, or the mark after them, stuck. A backend that sends faster than real time, as
   * asked, never hits this in the middle of speech.
   */
  next(): PlayoutTick {
    let frame: Buffer | undefined;
    if (this.#head < this.#frames.length) {
      frame = this.#dequeueFrame();
      this.#playedBytes += this.frameBytes;
    } else if (this.#partial.length > 0) {
      frame = Buffer.alloc(this.frameBytes);
      this.#partial.copy(frame);
      this.#playedBytes += this.#partial.length;
      this.#partial = Buffer.alloc(0);
    }
    return { frame, marksReached: this.#takeReachedMarks() };
  }

  #dequeueFrame(): Buffer {
    const frame = this.#frames[this.#head]!;
    this.#frames[this.#head++] = undefined; // let it be collected
    if (this.#head >= 1024 && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return frame;
  }

  /** Marks whose audio has all been sent (a mark set on an empty queue is reached at once). */
  takeReachedMarks(): string[] {
    return this.#takeReachedMarks();
  }

  #takeReachedMarks(): string[] {
    let reached = 0;
    while (reached < this.#marks.length && this.#marks[reached]!.position <= this.#playedBytes) reached++;
    return reached === 0 ? [] : this.#marks.splice(0, reached).map((mark) => mark.name);
  }

  /** Drops the oldest whole frames while more than the maximum is queued; returns ms dropped. */
  #dropOverflow(): number {
    let dropped = 0;
    while (this.#queuedBytes > this.#maxBytes && this.#head < this.#frames.length) {
      this.#dequeueFrame();
      this.#playedBytes += this.frameBytes;
      dropped += this.frameBytes;
    }
    return dropped / this.#bytesPerMs;
  }
}
