import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeControl } from '../../protocol/backend.ts';
import { AgentSession, roughRms } from './agent-session.ts';
import { callSeed, conversationTurns, DEFAULT_CONVERSATION, FRAME_MS, type Turn } from './conversation.ts';

const RATE = 16_000;
const FRAME = 640;

function startedSession(leadMs: number, sessionId = 'abc') {
  const sent: { at: number; data: string | Buffer }[] = [];
  let at = 0;
  const session = new AgentSession(
    {
      conversation: DEFAULT_CONVERSATION,
      runSeed: 1,
      pcm: Buffer.alloc(FRAME * 50, 1),
      sampleRate: RATE,
      leadMs,
    },
    (data) => sent.push({ at, data }),
  );
  session.onText(
    encodeControl({
      type: 'start',
      sessionId,
      audio: { encoding: 'pcm16le', sampleRate: RATE, channels: 1, frameMs: 20 },
      metadata: {},
    }),
    0,
  );
  session.onText(encodeControl({ type: 'event', name: 'connected' }), 0);
  const run = (ms: number) => {
    for (; at < ms; at += FRAME_MS) session.tick();
  };
  const turns: Turn[] = [];
  for (const turn of conversationTurns(callSeed(sessionId, 1), DEFAULT_CONVERSATION)) {
    if (turn.startMs > 120_000) break;
    turns.push(turn);
  }
  return { session, sent, run, agentTurns: turns.filter((t) => t.who === 'agent') };
}

describe('AgentSession', () => {
  test('streams frame by frame in its turns only, nothing between, clear at each barge-in', () => {
    const { session, sent, run, agentTurns } = startedSession(0);
    run(100_000);
    const audio = sent.filter((s) => typeof s.data !== 'string');
    for (const { at, data } of audio) {
      assert.equal(data.length, FRAME);
      assert.ok(
        agentTurns.some((t) => at >= t.startMs && at < t.endMs),
        `audio at ${at} ms outside the agent's turns`,
      );
    }
    const done = agentTurns.filter((t) => t.endMs < 100_000);
    const clears = sent.filter((s) => s.data === '{"type":"clear"}');
    assert.equal(clears.length, done.filter((t) => t.bargedIn).length);
    assert.ok(clears.length > 0);
    for (const clear of clears) assert.ok(done.some((t) => t.bargedIn && t.endMs === clear.at));
    // Every frame of every finished turn was sent, once.
    const expected = done.reduce((sum, t) => sum + (t.endMs - t.startMs) / FRAME_MS, 0);
    const inDone = audio.filter((s) => done.some((t) => s.at >= t.startMs && s.at < t.endMs)).length;
    assert.equal(inDone, expected);
    assert.equal(session.stats.clears, clears.length);
  });

  test('a lead sends a burst at the start of each turn, then one frame per tick', () => {
    const { sent, run, agentTurns } = startedSession(100);
    run(60_000);
    const turn = agentTurns.find((t) => t.startMs > 0 && !t.bargedIn && t.endMs < 60_000)!;
    const inTurn = sent.filter(
      (s) => typeof s.data !== 'string' && s.at >= turn.startMs && s.at < turn.endMs,
    );
    assert.equal(inTurn[0]!.at, turn.startMs);
    assert.equal(inTurn[0]!.data.length, 6 * FRAME);
    assert.ok(inTurn.slice(1, 10).every((s) => s.data.length === FRAME));
    const bytes = inTurn.reduce((sum, s) => sum + s.data.length, 0);
    assert.equal(bytes, ((turn.endMs - turn.startMs) / FRAME_MS) * FRAME);
  });

  test('nothing before connected; a wrong sample rate ends the call', () => {
    const sent: (string | Buffer)[] = [];
    const session = new AgentSession(
      {
        conversation: DEFAULT_CONVERSATION,
        runSeed: 1,
        pcm: Buffer.alloc(FRAME),
        sampleRate: RATE,
        leadMs: 0,
      },
      (data) => sent.push(data),
    );
    for (let i = 0; i < 500; i++) session.tick();
    assert.equal(sent.length, 0);
    session.onText(
      encodeControl({
        type: 'start',
        sessionId: 'x',
        audio: { encoding: 'pcm16le', sampleRate: 48_000, channels: 1, frameMs: 20 },
        metadata: {},
      }),
      0,
    );
    assert.ok(session.ended);
    assert.match(String(sent[0]), /"type":"end"/);
  });

  test('roughRms', () => {
    const pcm = Buffer.alloc(640);
    for (let i = 0; i < 320; i++) pcm.writeInt16LE(i % 2 === 0 ? 16384 : -16384, i * 2);
    assert.ok(Math.abs(roughRms(pcm) - 0.5) < 1e-9);
    assert.equal(roughRms(Buffer.alloc(640)), 0);
  });
});
