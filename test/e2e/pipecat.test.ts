// A voice agent nobody here wrote the protocol for: Chromium calls the edge, whose transceiver speaks
// Twilio Media Streams (docs/backend-protocol.md#twilio-media-streams) to the Pipecat bot of
// agents/pipecat-echo (pipecat-ai from PyPI, in its cached venv; Pipecat's own TwilioFrameSerializer
// and FastAPI WebSocket transport). The bot greets with a 440 Hz tone and a mark after each second
// of it; the caller's microphone is a 1000 Hz tone the test switches on and off.
// - Barge-in: the caller talks during the greeting; Pipecat interrupts (dropping what its own
//   output holds) and its serializer sends `clear`, so the edge drops what it holds: the greeting
//   stops at once in the browser. Marks come back when their second of greeting has been played.
// - Echo: what the caller says next comes back through the bot.
// - Hang-ups both ways: the browser's DELETE ends the bot's session; the bot's idle hang-up (it
//   closes its WebSocket, as a Pipecat phone bot does) ends the call at the edge.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { BOT_SCRIPT, pipecatPython } from '../../agents/pipecat-echo/venv.ts';
import { launchChromium } from '../support/chromium.ts';
import { Edge, Service } from '../support/edge.ts';
import { freeTcpPort } from '../support/net.ts';
import { sample } from '../support/prometheus.ts';
import { serveTestPages, type TestPages } from '../support/test-pages.ts';
import { type PageEvent, toneCallerEvents } from '../support/tone-caller.ts';
import { waitUntil } from '../support/wait.ts';

const GREETING_S = 4;
const IDLE_HANG_UP_S = 2;

interface BotEvent {
  event: string;
  t: number | null;
  name?: string;
  callSid?: string;
  streamSid?: string;
  customParameters?: Record<string, string>;
}

/** The bot's JSON event lines, from `since` (a count of lines already seen). */
function botEvents(bot: Service, since = 0): BotEvent[] {
  return bot.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as BotEvent)
    .slice(since);
}

async function eventAfter(tab: Page, what: string, after: number, timeoutMs: number): Promise<number> {
  let at: number | undefined;
  await waitUntil(
    async () => {
      at = (await toneCallerEvents(tab)).find((e) => e.what === what && e.t >= after)?.t;
      return at !== undefined;
    },
    timeoutMs,
    `${what} in the browser`,
  );
  return at!;
}

describe('a Pipecat phone bot answers Chromium through the edge (Twilio Media Streams)', () => {
  let bot: Service;
  let edge: Edge;
  let browser: Browser;
  let pages: TestPages;

  before(async () => {
    const python = await pipecatPython({ quiet: true });
    const port = await freeTcpPort();
    bot = await Service.startCommand(
      'pipecat bot',
      python,
      [
        '-u',
        BOT_SCRIPT,
        '--port',
        String(port),
        '--greeting-s',
        String(GREETING_S),
        '--idle-hang-up-s',
        String(IDLE_HANG_UP_S),
      ],
      `http://127.0.0.1:${port}/`,
    );
    edge = await Edge.start({
      backendUrl: `ws://127.0.0.1:${port}/ws`,
      backendProtocol: 'twilio-media-streams',
    });
    pages = await serveTestPages();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    pages?.close();
    await edge?.stop();
    await bot?.stop('SIGKILL');
  });

  async function call(): Promise<{ tab: Page; location: string; seen: number }> {
    const seen = botEvents(bot).length;
    const tab = await browser.newPage();
    await tab.goto(pages.url('tone-caller.html'));
    const location = await tab.evaluate(
      (url) => (window as unknown as { start(url: string): Promise<string> }).start(url),
      edge.whipUrl,
    );
    await eventAfter(tab, 'connection-connected', 0, 15_000);
    return { tab, location, seen };
  }

  const talk = (tab: Page, on: boolean) =>
    tab.evaluate((value) => (window as unknown as { talk(on: boolean): void }).talk(value), on);

  test('the caller interrupts the greeting, hears the echo, hangs up: the bot session ends', async () => {
    const { tab, location, seen } = await call();
    const greetingOn = await eventAfter(tab, 'greeting-on', 0, 10_000);
    await sleep(1_500);
    const talkAt = await tab.evaluate(() => performance.now());
    await talk(tab, true);
    const greetingOff = await eventAfter(tab, 'greeting-off', talkAt, 5_000);
    const echoOn = await eventAfter(tab, 'echo-on', talkAt, 5_000);
    await sleep(1_000);
    const quietAt = await tab.evaluate(() => performance.now());
    await talk(tab, false);
    const echoOff = await eventAfter(tab, 'echo-off', quietAt, 5_000);
    const heard = await toneCallerEvents(tab);
    const hangUpStatus = await tab.evaluate(() =>
      (window as unknown as { hangUp(): Promise<number> }).hangUp(),
    );
    await waitUntil(
      async () => botEvents(bot, seen).some((e) => e.event === 'ended'),
      5_000,
      'the bot session to end',
    );
    await waitUntil(async () => (await edge.status()).sessions === 0, 5_000, 'no session at the edge');
    const bot1 = botEvents(bot, seen);
    const metrics = await edge.transceiverMetrics();
    await tab.close();

    const at = (name: string) => bot1.find((e) => e.event === name)?.t ?? undefined;
    const marks = bot1.filter((e) => e.event === 'mark');
    const bargeIn = at('barge-in');
    const figures = {
      greetingStoppedMs: Math.round(greetingOff - talkAt),
      greetingHeardMs: Math.round(talkAt - greetingOn),
      echoHeardMs: Math.round(echoOn - talkAt),
      echoStoppedMs: Math.round(echoOff - quietAt),
      bargeInS: bargeIn,
      marks: marks.map((m) => `${m.name}@${m.t}`),
      clearedS: sample(metrics, 'voice_edge_transceiver_backend_cleared_seconds_total'),
      disconnectedS: at('disconnected'),
    };
    console.log(`pipecat barge-in and echo: ${JSON.stringify(figures)}`);

    // Twilio's start, as Pipecat parsed it: the call's SIDs, and the session in customParameters.
    const start = bot1.find((e) => e.event === 'start');
    assert.match(start?.callSid ?? '', /^CA[0-9a-f]{32}$/);
    assert.match(start?.streamSid ?? '', /^MZ[0-9a-f]{32}$/);
    assert.equal(start?.customParameters?.sessionId, location.slice(location.lastIndexOf('.') + 1));
    assert.equal(typeof start?.customParameters?.userAgent, 'string');

    // Barge-in: Pipecat's interruption, sent to the edge as a `clear`, cut the greeting within half
    // a second of the caller's first word, and it never came back.
    assert.ok(bargeIn !== undefined, `no barge-in: ${JSON.stringify(bot1)}`);
    assert.ok(
      figures.greetingStoppedMs < 500,
      `greeting went on ${figures.greetingStoppedMs} ms after the caller spoke`,
    );
    assert.ok(!heard.some((e) => e.what === 'greeting-on' && e.t > greetingOff), 'the greeting came back');
    assert.equal(sample(metrics, 'voice_edge_transceiver_backend_clears_total'), 1);

    // Marks: one at most per name, each back when its second of greeting had been played. One sent
    // but not yet played at the clear comes back with it (Pipecat paces its output at real time in
    // 40 ms chunks, so the edge holds little: test/e2e/fast-backend.test.ts clears seconds of it).
    const names = marks.map((m) => m.name);
    assert.deepEqual(names, [...new Set(names)]);
    assert.ok(marks.length >= 1, `no mark came back while the greeting played: ${figures.marks}`);
    for (const m of marks) {
      const second = Number(m.name!.split('-')[1]);
      if (m.t! < bargeIn)
        assert.ok(m.t! >= second - 0.2, `${m.name} came back at ${m.t} s, before it was played`);
      else assert.ok(m.t! - bargeIn < 0.5, `${m.name} came back ${m.t! - bargeIn} s after the barge-in`);
    }

    // Echo: the caller's tone came back through the bot, and stopped when the caller did.
    assert.ok(figures.echoHeardMs < 500, `echo heard ${figures.echoHeardMs} ms after the caller spoke`);
    assert.ok(
      figures.echoStoppedMs < 500,
      `echo went on ${figures.echoStoppedMs} ms after the caller stopped`,
    );

    // The browser's hang-up (WHIP DELETE) ended the bot's session.
    assert.equal(hangUpStatus, 200);
    assert.ok(at('disconnected') !== undefined, 'the bot saw no disconnect');
  });

  test('the bot hangs up on a silent caller: the call ends at the edge and in the browser', async () => {
    const { tab, seen } = await call();
    await waitUntil(
      async () => botEvents(bot, seen).some((e) => e.event === 'hang-up'),
      15_000,
      "the bot's idle hang-up",
    );
    const hangUpSeen = Date.now();
    await waitUntil(async () => (await edge.status()).sessions === 0, 3_000, 'no session at the edge');
    // The browser learns the call is over (docs/reliability.md#the-call-ends-at-the-edge): the edge's
    // fatal-level DTLS close_notify fails its RTCDtlsTransport, and with it the connection, at once.
    // Before, it stayed `connected` until ICE consent expired, 25–30 s later.
    let left: PageEvent | undefined;
    await waitUntil(
      async () => {
        left = (await toneCallerEvents(tab)).find(
          (e) =>
            e.what.startsWith('connection-') &&
            e.what !== 'connection-connected' &&
            e.what !== 'connection-connecting' &&
            e.what !== 'connection-new',
        );
        return left !== undefined;
      },
      5_000,
      "the browser's connection to leave 'connected'",
    );
    const dtlsClosed = (await toneCallerEvents(tab)).find(
      (e) => e.what === 'dtls-closed' || e.what === 'dtls-failed',
    );
    const bot2 = botEvents(bot, seen);
    const packets = () =>
      tab.evaluate(() => (window as unknown as { packetsReceived(): Promise<number> }).packetsReceived());
    const before = await packets();
    await sleep(1_000);
    const afterSecond = await packets();
    const deleteStatus = await tab.evaluate(() =>
      (window as unknown as { deleteStatus(): Promise<number> }).deleteStatus(),
    );
    const heard = await toneCallerEvents(tab);
    await tab.close();
    console.log(
      `pipecat idle hang-up: ${JSON.stringify(bot2.filter((e) => e.event !== 'start'))}, packets after: ${afterSecond - before}, ` +
        `browser: ${dtlsClosed?.what ?? 'DTLS still up'} ${dtlsClosed === undefined ? '–' : dtlsClosed.wall! - hangUpSeen} ms, ${left!.what} ${left!.wall! - hangUpSeen} ms after the hang-up was seen`,
    );

    // The whole greeting played, each mark back when its second had been played.
    const marks = bot2.filter((e) => e.event === 'mark');
    assert.deepEqual(
      marks.map((m) => m.name),
      Array.from({ length: GREETING_S }, (_, i) => `greeting-${i + 1}`),
    );
    for (const [i, m] of marks.entries()) {
      assert.ok(m.t! >= i + 1 - 0.2 && m.t! <= i + 1 + 0.6, `${m.name} came back at ${m.t} s`);
    }
    assert.ok(
      heard.some((e) => e.what === 'greeting-on'),
      'the greeting was not heard',
    );
    assert.ok(!bot2.some((e) => e.event === 'barge-in'), 'a silent caller barged in');

    // The bot's hang-up (closing its WebSocket) ended the call: no session, no more audio, and the
    // WHIP session is gone.
    const hangUp = bot2.find((e) => e.event === 'hang-up')!;
    assert.ok(hangUp.t! >= GREETING_S + IDLE_HANG_UP_S - 0.3, `hung up at ${hangUp.t} s`);
    assert.ok(bot2.some((e) => e.event === 'ended'));
    assert.ok(afterSecond - before <= 1, `${afterSecond - before} packets arrived after the call ended`);
    assert.equal(deleteStatus, 404);
    assert.ok(dtlsClosed !== undefined, "the browser's DTLS transport did not end");
    assert.ok(
      dtlsClosed.wall! - hangUpSeen < 1_000,
      `its DTLS transport ended ${dtlsClosed.wall! - hangUpSeen} ms after`,
    );
    assert.ok(
      left!.wall! - hangUpSeen < 1_000,
      `the browser left 'connected' ${left!.wall! - hangUpSeen} ms after`,
    );
  });
});
