import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulawToPcm16, pcm16ToMulaw } from '../../audio/mulaw.ts';
import { sine } from '../../audio/tone.ts';
import { mediaMessage, startMessage, stopMessage } from '../../protocol/twilio-media-streams.ts';
import { AgentSession } from './agent-session.ts';
import { callSeed, conversationTurns, DEFAULT_CONVERSATION, FRAME_MS } from './conversation.ts';
import { TWILIO_RATE, TwilioAgentWire } from './twilio-agent-wire.ts';

const IDS = {
  accountSid: `AC${'0'.repeat(32)}`,
  callSid: `CA${'1'.repeat(32)}`,
  streamSid: `MZ${'2'.repeat(32)}`,
};
const SPEECH = sine(300, TWILIO_RATE, 1000, 0.3);

function call(leadMs = 0) {
  const sent: string[] = [];
  let closed = 0;
  let wire!: TwilioAgentWire;
  const session = new AgentSession(
    { conversation: DEFAULT_CONVERSATION, runSeed: 1, pcm: SPEECH, sampleRate: TWILIO_RATE, leadMs },
    (data) => wire.fromSession(data),
  );
  wire = new TwilioAgentWire(
    session,
    (text) => sent.push(text),
    () => closed++,
  );
  return { session, wire, sent, closed: () => closed };
}

describe('TwilioAgentWire', () => {
  test("start, media and stop drive the session; its audio leaves as 20 ms μ-law media, its clear as Twilio's", () => {
    const { session, wire, sent } = call();
    wire.onMessage(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }), 0);
    wire.onMessage(JSON.stringify(startMessage(IDS, 1, { sessionId: 'abc' })), 0);
    // The caller's first frame starts the agent's clock (Twilio has no `connected` event of the call).
    wire.onMessage(
      JSON.stringify(mediaMessage(IDS.streamSid, 2, 1, 0, pcm16ToMulaw(SPEECH.subarray(0, 320)))),
      0,
    );
    assert.equal(session.stats.framesIn, 1);
    const bargedIn: number[] = [];
    for (const turn of conversationTurns(callSeed('abc', 1), DEFAULT_CONVERSATION)) {
      if (turn.startMs >= 60_000) break;
      if (turn.who === 'agent' && turn.bargedIn) bargedIn.push(turn.startMs);
    }
    for (let at = 0; at < 60_000; at += FRAME_MS) session.tick();
    const messages = sent.map((text) => JSON.parse(text));
    const media = messages.filter((m) => m.event === 'media');
    assert.ok(media.length > 100);
    for (const m of media) {
      assert.equal(m.streamSid, IDS.streamSid);
      assert.equal(Buffer.from(m.media.payload, 'base64').length, 160);
    }
    // The audio is the session's speech, μ-law coded: decoded, it is the tone back.
    const first = mulawToPcm16(Buffer.from(media[0].media.payload, 'base64'));
    assert.ok(Math.abs(first.readInt16LE(20) - SPEECH.readInt16LE(20)) < 200);
    const clears = messages.filter((m) => m.event === 'clear');
    assert.equal(clears.length, session.stats.clears);
    assert.ok(clears.length > 0 && clears.length <= bargedIn.length);
    for (const c of clears) assert.deepEqual(c, { event: 'clear', streamSid: IDS.streamSid });
    wire.onMessage(JSON.stringify(stopMessage(IDS, 9)), 0);
    assert.equal(session.ended, true);
  });

  test('a start at another rate is refused by the session: the wire closes the call', () => {
    const { wire, closed } = call();
    const session = new AgentSession(
      { conversation: DEFAULT_CONVERSATION, runSeed: 1, pcm: SPEECH, sampleRate: 16_000, leadMs: 0 },
      (data) => other.fromSession(data),
    );
    let otherClosed = 0;
    const other = new TwilioAgentWire(
      session,
      () => {},
      () => otherClosed++,
    );
    other.onMessage(JSON.stringify(startMessage(IDS, 1, { sessionId: 'abc' })), 0);
    assert.equal(otherClosed, 1);
    assert.equal(session.ended, true);
    // Garbage, unknown events and media without a payload are ignored.
    wire.onMessage('{not json', 0);
    wire.onMessage(JSON.stringify({ event: 'dtmf' }), 0);
    wire.onMessage(JSON.stringify({ event: 'media', media: {} }), 0);
    assert.equal(closed(), 0);
  });
});
