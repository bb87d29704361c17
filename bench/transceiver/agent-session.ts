// One call of the benchmark agent (conversation-agent.ts), sans I/O: messages from the
// transceiver in, a `send` callback out, `tick()` every 20 ms of its timer.
//
// The agent follows the call's conversation (conversation.ts, seeded by the session ID from
// `start`), its clock starting at the transceiver's `connected` event (or the first caller frame,
// whichever comes first). In its turns it streams its speech (PCM16LE at the call's rate) in real
// time: one 20 ms frame per tick, after a first burst of `leadMs` sent at once (default 0: frame by
// frame, as a streaming speech model produces it). Between its turns it sends nothing. A turn cut
// by barge-in ends with a `clear`. What it receives, it only measures: the caller's level inside
// its turns and between them (a check that the speech and the noise floor arrive where they should).
import { decodeControl, encodeControl, frameBytes, isSampleRate } from '../../protocol/backend.ts';
import { type ConversationOptions, callSeed, FRAME_MS, type Turn, TurnCursor } from './conversation.ts';

export interface AgentSessionOptions {
  readonly conversation: ConversationOptions;
  readonly runSeed: number;
  /** The agent's speech, PCM16LE mono at `sampleRate`, looped. */
  readonly pcm: Buffer;
  readonly sampleRate: number;
  /** Audio sent ahead at the start of each turn (ms, whole frames), then one frame per tick. */
  readonly leadMs: number;
}

/** Counters of one session, or of the whole agent (added up). */
export interface AgentStats {
  sessions: number;
  framesIn: number;
  /** Messages and bytes of audio sent, turns started, turns cut (`clear` sent). */
  messagesOut: number;
  bytesOut: number;
  turns: number;
  clears: number;
  /** Caller frames at least MARGIN_MS inside its turns / between them, and their summed RMS. */
  speechFrames: number;
  speechRmsSum: number;
  noiseFrames: number;
  noiseRmsSum: number;
  /** `error` messages the transceiver sent us. */
  errors: number;
}

export function emptyStats(): AgentStats {
  return {
    sessions: 0,
    framesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    turns: 0,
    clears: 0,
    speechFrames: 0,
    speechRmsSum: 0,
    noiseFrames: 0,
    noiseRmsSum: 0,
    errors: 0,
  };
}

/** Frames this close to a turn's edge (either side's clock) are not classified. */
const MARGIN_MS = 300;

/** RMS of PCM16LE relative to full scale, from every other sample (cheap, plenty for a level). */
export function roughRms(pcm: Buffer): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i + 1 < pcm.length; i += 4) {
    const value = pcm.readInt16LE(i);
    sum += value * value;
    count++;
  }
  return count === 0 ? 0 : Math.sqrt(sum / count) / 32768;
}

export class AgentSession {
  readonly stats: AgentStats = { ...emptyStats(), sessions: 1 };
  readonly #options: AgentSessionOptions;
  readonly #send: (data: string | Buffer) => void;
  #started = false;
  #ended = false;
  #agent: TurnCursor | undefined;
  #caller: TurnCursor | undefined;
  /** The caller's turns seen so far, for the margins: the last one that ended. */
  #callerLastEnd = Number.NEGATIVE_INFINITY;
  #frameBytes = 0;
  /** Media time (ms since the clock started) of the next tick. */
  #mediaMs = 0;
  #clockStartedAt: number | undefined;
  #turn: Turn | undefined;
  /** Audio of the current turn sent so far (ms). */
  #sentMs = 0;
  #offset = 0;

  constructor(options: AgentSessionOptions, send: (data: string | Buffer) => void) {
    this.#options = options;
    this.#send = send;
  }

  get ended(): boolean {
    return this.#ended;
  }

  onText(text: string, now: number): void {
    const result = decodeControl(text, 'to-backend');
    if (!result.ok) return;
    const message = result.message;
    switch (message.type) {
      case 'start': {
        const rate = message.audio.sampleRate;
        if (!isSampleRate(rate) || rate !== this.#options.sampleRate) {
          this.#send(
            encodeControl({
              type: 'end',
              reason: `sample rate ${rate}, agent speaks ${this.#options.sampleRate}`,
            }),
          );
          this.#ended = true;
          return;
        }
        this.#frameBytes = frameBytes(rate);
        const seed = callSeed(message.sessionId, this.#options.runSeed);
        this.#agent = new TurnCursor(seed, this.#options.conversation, 'agent');
        this.#caller = new TurnCursor(seed, this.#options.conversation, 'caller');
        const frames = Math.floor(this.#options.pcm.length / this.#frameBytes);
        this.#offset = (seed % Math.max(1, frames)) * this.#frameBytes;
        return;
      }
      case 'event':
        if (message.name === 'connected') this.#startClock(now);
        return;
      case 'error':
        this.stats.errors++;
        return;
      case 'end':
        this.#ended = true;
        return;
      default:
        return;
    }
  }

  #startClock(now: number): void {
    if (this.#started || this.#agent === undefined) return;
    this.#started = true;
    this.#clockStartedAt = now;
  }

  /** A frame of the caller's audio arrived at `now` (ms, the same clock as `onText`). */
  onBinary(pcm: Buffer, now: number): void {
    this.stats.framesIn++;
    this.#startClock(now);
    if (this.#caller === undefined || this.#clockStartedAt === undefined) return;
    const at = now - this.#clockStartedAt;
    const turn = this.#caller.at(at);
    if (turn !== undefined) {
      this.#callerLastEnd = turn.endMs;
      if (at - turn.startMs >= MARGIN_MS && turn.endMs - at >= MARGIN_MS) {
        this.stats.speechFrames++;
        this.stats.speechRmsSum += roughRms(pcm);
      }
    } else if (at - this.#callerLastEnd >= MARGIN_MS && this.#caller.upcomingStartMs - at >= MARGIN_MS) {
      this.stats.noiseFrames++;
      this.stats.noiseRmsSum += roughRms(pcm);
    }
  }

  /** One tick of the agent's 20 ms timer: speak, stop, or cut. */
  tick(): void {
    if (!this.#started || this.#ended) return;
    const at = this.#mediaMs;
    this.#mediaMs += FRAME_MS;
    const turn = this.#agent!.at(at);
    if (turn !== this.#turn) {
      // The previous turn is over: cut (barge-in) or finished.
      if (this.#turn?.bargedIn === true) {
        this.stats.clears++;
        this.#send(encodeControl({ type: 'clear' }));
      }
      this.#turn = turn;
      this.#sentMs = 0;
      if (turn !== undefined) this.stats.turns++;
    }
    if (turn === undefined) return;
    // Audio due by the end of this tick, plus the lead; a turn cut by barge-in was planned longer,
    // so it streams on until the cut.
    const length = turn.bargedIn ? Number.POSITIVE_INFINITY : turn.endMs - turn.startMs;
    const due = Math.min(length, at - turn.startMs + FRAME_MS + this.#options.leadMs);
    const frames = Math.floor((due - this.#sentMs) / FRAME_MS);
    if (frames <= 0) return;
    this.#sentMs += frames * FRAME_MS;
    const chunk = this.#take(frames * this.#frameBytes);
    this.stats.messagesOut++;
    this.stats.bytesOut += chunk.length;
    this.#send(chunk);
  }

  /** The next `bytes` of the speech loop (a view when it does not wrap). */
  #take(bytes: number): Buffer {
    const pcm = this.#options.pcm;
    if (this.#offset + bytes <= pcm.length) {
      const out = pcm.subarray(this.#offset, this.#offset + bytes);
      this.#offset = (this.#offset + bytes) % pcm.length;
      return out;
    }
    const out = Buffer.allocUnsafe(bytes);
    for (let written = 0; written < bytes; ) {
      const n = Math.min(bytes - written, pcm.length - this.#offset);
      pcm.copy(out, written, this.#offset, this.#offset + n);
      written += n;
      this.#offset = (this.#offset + n) % pcm.length;
    }
    return out;
  }
}
