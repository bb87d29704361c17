// The conversation-shaped load of the transceiver benchmark (docs/benchmarks.md): who talks when in
// one call. Pure and deterministic: the caller (caller.ts) and the benchmark agent
// (conversation-agent.ts) run in different processes and never talk to each other about it; each
// derives the same schedule from the run's seed and the call's session ID (the caller reads it from
// its WHIP Location, the agent from `start`), and starts its clock when media begins to flow (the
// caller at DTLS connected, the agent at the `connected` event: a few ms apart on loopback).
//
// The call alternates turns, caller and agent, each 2–6 s long (uniform, whole 20 ms frames),
// with a pause after each turn of (1 / (2 × talkShare) − 1) × the turn's length, so each side talks
// `talkShare` of the time (0.5: no pauses, one side always talking). A share of the agent's turns
// is cut by barge-in: the caller's next turn starts early, somewhere in the middle of the agent's
// planned turn, and the agent stops and sends `clear` `BARGE_IN_DETECT_MS` after that, as an agent
// does once its voice-activity detector has heard the user. The first turn's owner is drawn, and it
// starts somewhere inside its length, so calls set up together do not talk in step.
import { mulberry32 } from '../../test/support/wan/link-scheduler.ts';

/** 20 ms: one frame of audio each way. */
export const FRAME_MS = 20;
/** How long after the caller starts talking over it the agent notices and sends `clear` (ms). */
export const BARGE_IN_DETECT_MS = 200;

export interface ConversationOptions {
  /** Share of the time each side talks, (0, 0.5]. */
  readonly talkShare: number;
  /** Share of the agent's turns cut by the caller talking over it, [0, 1]. */
  readonly bargeInShare: number;
  /** Turn lengths, uniform in [minTurnMs, maxTurnMs] (ms). */
  readonly minTurnMs: number;
  readonly maxTurnMs: number;
}

export const DEFAULT_CONVERSATION: ConversationOptions = {
  talkShare: 0.5,
  bargeInShare: 0.3,
  minTurnMs: 2000,
  maxTurnMs: 6000,
};

export interface Turn {
  readonly who: 'caller' | 'agent';
  /** When the side starts talking and stops (ms since the call's media began), whole frames. */
  readonly startMs: number;
  readonly endMs: number;
  /** Agent turns only: cut by barge-in (the agent sends `clear` at endMs). */
  readonly bargedIn: boolean;
}

/** Throws on options outside their ranges (the CLI's check). */
export function checkConversationOptions(options: ConversationOptions): void {
  if (!(options.talkShare > 0 && options.talkShare <= 0.5))
    throw new RangeError(`talk share must be in (0, 0.5], not ${options.talkShare}`);
  if (!(options.bargeInShare >= 0 && options.bargeInShare <= 1))
    throw new RangeError(`barge-in share must be in [0, 1], not ${options.bargeInShare}`);
  if (!(options.minTurnMs >= 5 * FRAME_MS && options.maxTurnMs >= options.minTurnMs))
    throw new RangeError(
      `turn lengths must satisfy 100 <= min <= max, not ${options.minTurnMs}–${options.maxTurnMs}`,
    );
}

/** A seeded PRNG, floats in [0, 1): the test support's mulberry32. */
export const rng = mulberry32;

/** The seed of one call: FNV-1a of the session ID, mixed with the run's seed. */
export function callSeed(sessionId: string, runSeed: number): number {
  let hash = 0x811c9dc5 ^ (runSeed >>> 0);
  for (let i = 0; i < sessionId.length; i++) {
    hash ^= sessionId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

function frames(ms: number): number {
  return Math.max(1, Math.round(ms / FRAME_MS)) * FRAME_MS;
}

/** The call's turns in order, forever (take what you need). */
export function* conversationTurns(seed: number, options: ConversationOptions): Generator<Turn> {
  const random = rng(seed);
  const { talkShare, bargeInShare, minTurnMs, maxTurnMs } = options;
  const pauseFactor = 1 / (2 * talkShare) - 1;
  const length = () => frames(minTurnMs + random() * (maxTurnMs - minTurnMs));
  let who: Turn['who'] = random() < 0.5 ? 'caller' : 'agent';
  // The first turn is entered somewhere inside: [start, end) straddles 0, clipped to 0.
  let first = true;
  let at = 0;
  for (;;) {
    let planned = length();
    let bargedIn = false;
    let endMs: number;
    // The caller talks over this agent turn from `overlapAt`: its next turn starts there.
    let nextStart: number | undefined;
    if (who === 'agent' && random() < bargeInShare) {
      bargedIn = true;
      const overlapAt = frames(planned * (0.3 + 0.5 * random()));
      nextStart = at + overlapAt;
      endMs = nextStart + BARGE_IN_DETECT_MS;
      planned = endMs - at;
    } else endMs = at + planned;
    const pause = pauseFactor === 0 ? 0 : frames(planned * pauseFactor);
    let startMs = at;
    if (first) {
      const skip = frames(random() * planned) - FRAME_MS;
      startMs -= skip;
      endMs -= skip;
      if (nextStart !== undefined) nextStart -= skip;
      first = false;
    }
    yield { who, startMs: Math.max(0, startMs), endMs, bargedIn };
    at = nextStart ?? endMs + pause;
    who = who === 'caller' ? 'agent' : 'caller';
  }
}

/**
 * Follows one side's turns as time moves forward (the caller per 20 ms tick, the agent per tick of
 * its timer): `at(t)` is the turn of this side that covers t, or undefined between its turns.
 */
export class TurnCursor {
  readonly #turns: Generator<Turn>;
  readonly #who: Turn['who'];
  #current: Turn;

  constructor(seed: number, options: ConversationOptions, who: Turn['who']) {
    this.#turns = conversationTurns(seed, options);
    this.#who = who;
    this.#current = this.#nextOwn();
  }

  #nextOwn(): Turn {
    for (;;) {
      const turn = this.#turns.next().value as Turn;
      if (turn.who === this.#who) return turn;
    }
  }

  /** After `at` returned undefined: when the side's next turn starts (ms). */
  get upcomingStartMs(): number {
    return this.#current.startMs;
  }

  /** The side's turn covering `ms` (non-decreasing from call to call), or undefined. */
  at(ms: number): Turn | undefined {
    while (ms >= this.#current.endMs) this.#current = this.#nextOwn();
    return ms >= this.#current.startMs ? this.#current : undefined;
  }
}
