import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BARGE_IN_DETECT_MS,
  type ConversationOptions,
  callSeed,
  checkConversationOptions,
  conversationTurns,
  DEFAULT_CONVERSATION,
  FRAME_MS,
  rng,
  type Turn,
  TurnCursor,
} from './conversation.ts';

function take(seed: number, options: ConversationOptions, count: number): Turn[] {
  const out: Turn[] = [];
  for (const turn of conversationTurns(seed, options)) {
    out.push(turn);
    if (out.length === count) break;
  }
  return out;
}

/** Share of [0, spanMs) each side talks, on a 20 ms grid. */
function shares(turns: Turn[], spanMs: number): { caller: number; agent: number; both: number } {
  let caller = 0;
  let agent = 0;
  let both = 0;
  for (let t = 0; t < spanMs; t += FRAME_MS) {
    const c = turns.some((x) => x.who === 'caller' && t >= x.startMs && t < x.endMs);
    const a = turns.some((x) => x.who === 'agent' && t >= x.startMs && t < x.endMs);
    caller += c ? 1 : 0;
    agent += a ? 1 : 0;
    both += c && a ? 1 : 0;
  }
  const frames = spanMs / FRAME_MS;
  return { caller: caller / frames, agent: agent / frames, both: both / frames };
}

describe('conversation schedule', () => {
  test('the same seed gives the same turns; another seed others', () => {
    assert.deepEqual(take(42, DEFAULT_CONVERSATION, 50), take(42, DEFAULT_CONVERSATION, 50));
    assert.notDeepEqual(take(42, DEFAULT_CONVERSATION, 50), take(43, DEFAULT_CONVERSATION, 50));
    assert.equal(callSeed('abc', 1), callSeed('abc', 1));
    assert.notEqual(callSeed('abc', 1), callSeed('abd', 1));
    assert.notEqual(callSeed('abc', 1), callSeed('abc', 2));
    const random = rng(7);
    for (let i = 0; i < 1000; i++) {
      const x = random();
      assert.ok(x >= 0 && x < 1);
    }
  });

  test('turns alternate, on whole frames, 2–6 s unless cut', () => {
    for (let seed = 0; seed < 20; seed++) {
      const turns = take(seed, DEFAULT_CONVERSATION, 60);
      for (let i = 0; i < turns.length; i++) {
        const turn = turns[i]!;
        if (i > 0) assert.notEqual(turn.who, turns[i - 1]!.who);
        assert.equal(turn.endMs % FRAME_MS, 0);
        assert.ok(turn.endMs > turn.startMs);
        if (turn.bargedIn) assert.equal(turn.who, 'agent');
        if (i > 0 && !turn.bargedIn) {
          const length = turn.endMs - turn.startMs;
          assert.ok(length >= 2000 && length <= 6000, `turn of ${length} ms`);
        }
      }
    }
  });

  test('talk share 0.5: one side always talking, each about half the time, overlaps only at barge-in', () => {
    const turns = take(1, DEFAULT_CONVERSATION, 400);
    const span = turns[turns.length - 1]!.startMs;
    const s = shares(turns, span);
    assert.ok(Math.abs(s.caller - 0.5) < 0.05, `caller ${s.caller}`);
    assert.ok(Math.abs(s.agent - 0.5) < 0.05, `agent ${s.agent}`);
    // Every frame has someone talking (no pause at 0.5).
    assert.ok(s.caller + s.agent - s.both > 0.999);
    // Overlap: BARGE_IN_DETECT_MS per barged-in turn.
    const cut = turns.filter((t) => t.bargedIn).length;
    assert.ok(Math.abs(s.both * span - cut * BARGE_IN_DETECT_MS) <= BARGE_IN_DETECT_MS);
  });

  test('barge-in share and talk share are what was asked', () => {
    const options = { ...DEFAULT_CONVERSATION, talkShare: 0.25, bargeInShare: 0.5 };
    const turns = take(9, options, 2000);
    const agent = turns.filter((t) => t.who === 'agent');
    const cut = agent.filter((t) => t.bargedIn).length / agent.length;
    assert.ok(Math.abs(cut - 0.5) < 0.05, `barge-in share ${cut}`);
    const none = take(9, { ...DEFAULT_CONVERSATION, bargeInShare: 0 }, 500);
    assert.ok(none.every((t) => !t.bargedIn));
    const quiet = take(3, { ...DEFAULT_CONVERSATION, talkShare: 0.25, bargeInShare: 0 }, 400);
    const s = shares(quiet, quiet[quiet.length - 1]!.startMs);
    assert.ok(Math.abs(s.caller - 0.25) < 0.04 && Math.abs(s.agent - 0.25) < 0.04, JSON.stringify(s));
  });

  test('a barged-in agent turn ends BARGE_IN_DETECT_MS after the caller starts', () => {
    const turns = take(5, { ...DEFAULT_CONVERSATION, bargeInShare: 1 }, 40);
    for (let i = 1; i < turns.length - 1; i++) {
      const turn = turns[i]!;
      if (turn.who !== 'agent') continue;
      assert.ok(turn.bargedIn);
      assert.equal(turn.endMs - turns[i + 1]!.startMs, BARGE_IN_DETECT_MS);
    }
  });

  test('calls start at different points of their conversations', () => {
    const firsts = Array.from(
      { length: 200 },
      (_, i) => take(callSeed(`session-${i}`, 1), DEFAULT_CONVERSATION, 1)[0]!,
    );
    const callerFirst = firsts.filter((t) => t.who === 'caller').length;
    assert.ok(callerFirst > 70 && callerFirst < 130);
    assert.ok(firsts.every((t) => t.startMs === 0));
    const ends = new Set(firsts.map((t) => t.endMs));
    assert.ok(ends.size > 50);
  });

  test('TurnCursor follows one side', () => {
    const turns = take(11, DEFAULT_CONVERSATION, 30);
    const cursor = new TurnCursor(11, DEFAULT_CONVERSATION, 'caller');
    for (let t = 0; t < turns[29]!.startMs; t += FRAME_MS) {
      const expected = turns.find((x) => x.who === 'caller' && t >= x.startMs && t < x.endMs);
      assert.deepEqual(cursor.at(t), expected, `at ${t} ms`);
    }
  });

  test('options are checked', () => {
    checkConversationOptions(DEFAULT_CONVERSATION);
    assert.throws(() => checkConversationOptions({ ...DEFAULT_CONVERSATION, talkShare: 0.6 }), RangeError);
    assert.throws(() => checkConversationOptions({ ...DEFAULT_CONVERSATION, talkShare: 0 }), RangeError);
    assert.throws(() => checkConversationOptions({ ...DEFAULT_CONVERSATION, bargeInShare: 1.1 }), RangeError);
    assert.throws(() => checkConversationOptions({ ...DEFAULT_CONVERSATION, minTurnMs: 7000 }), RangeError);
  });
});
