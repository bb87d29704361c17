// The demo page signaling serves at GET /, in Debian's Chromium (playwright-core): press Talk, get
// connected through the local edge (local/edge.ts: echo agent, transceiver, relay, signaling in
// this process), watch the five plots fill and the echo come back, hang up. Then the ways a call
// fails, each of which the page must say plainly: the edge ends the call, signaling answers 503,
// the microphone is refused. Screenshots go to test-artifacts/ for people.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { stringify } from 'yaml';
import { type LocalEdge, startLocalEdge } from '../../local/edge.ts';
import { SignalingConfigSchema } from '../../signaling/config.ts';
import { type SignalingHandle, startSignaling } from '../../signaling/signaling.ts';
import { launchChromium } from '../support/chromium.ts';
import { freeTcpPort, freeUdpPort } from '../support/net.ts';

const ECHO_DELAY_MS = 300;
/** Points each plot must have before the call is judged (one a second). */
const POINTS = 5;
const RETRY_AFTER_SECONDS = 7;
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/** What the page keeps on window.voiceEdgeDemo (see signaling/demo/demo.js). */
interface Point {
  t: number;
  value: number;
}
type Series = 'rtt' | 'jitter' | 'loss' | 'levelIn' | 'levelOut';
interface DemoState {
  state: string;
  error: string | null;
  failure: {
    kind: string;
    status?: number;
    code?: string;
    detail?: string;
    retryAfterSeconds?: number;
  } | null;
  setupMs: number | null;
  setup: { microphoneMs: number | null; offerToAnswerMs: number | null; connectMs: number | null };
  whipStatus: number | null;
  sessionUrl: string | null;
  relay: string | null;
  hangUpStatus: number | null;
  rttSource: string | null;
  samples: Record<Series, Point[]>;
  packets: { received: number; lost: number; sent: number };
  events: { ms: number; text: string }[];
}
const SERIES: Series[] = ['rtt', 'jitter', 'loss', 'levelIn', 'levelOut'];

const demoState = (tab: Page) =>
  tab.evaluate(() => (window as unknown as { voiceEdgeDemo: DemoState }).voiceEdgeDemo);

async function waitForState(tab: Page, states: string[], timeoutMs: number): Promise<DemoState> {
  await tab
    .waitForFunction(
      (wanted) => wanted.includes((window as unknown as { voiceEdgeDemo: DemoState }).voiceEdgeDemo.state),
      states,
      { timeout: timeoutMs, polling: 100 },
    )
    .catch(async (error: Error) => {
      const now = await demoState(tab);
      throw new Error(`page state ${now.state}, not ${states.join('|')}: ${now.error ?? error.message}`);
    });
  return demoState(tab);
}

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const last = (points: Point[]) => points[points.length - 1]?.value;

describe('the demo page served by signaling', () => {
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  let edge: LocalEdge | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let tab: Page | undefined;
  const pageProblems: string[] = [];
  let failed = false;

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    edge = await startLocalEdge(
      {
        host: '127.0.0.1',
        httpPort: 0,
        relayPort: await freeUdpPort(),
        echoDelayMs: ECHO_DELAY_MS,
        sampleRate: 16000,
      },
      logger,
    );
    browser = await launchChromium();
    context = await browser.newContext({
      permissions: ['microphone'],
      viewport: { width: 1100, height: 900 },
    });
    tab = await context.newPage();
    tab.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning')
        pageProblems.push(`${message.type()}: ${message.text()}`);
    });
    tab.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
  });

  after(async () => {
    if (failed) {
      writeFileSync(`${artifacts}demo-page-edge.log`, logLines.join(''));
      const state = await tab?.evaluate(
        () => (window as unknown as { voiceEdgeDemo?: unknown }).voiceEdgeDemo,
      );
      writeFileSync(`${artifacts}demo-page-state.json`, `${JSON.stringify(state ?? null, null, 2)}\n`);
    }
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await edge?.shutdown();
  });

  const track = async <T>(body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      failed = true;
      throw error;
    }
  };

  test('Talk: connected through the relay, five live plots, the echo comes back; Hang up ends the session', (t) =>
    track(async () => {
      const response = await tab!.goto(edge!.url);
      assert.equal(response?.status(), 200);
      assert.match(response?.headers()['content-security-policy'] ?? '', /connect-src 'self'/);
      assert.equal(await tab!.locator('#state-text').textContent(), 'Ready');

      await tab!.click('#talk');
      const connected = await waitForState(tab!, ['connected'], 20_000);
      assert.ok(finite(connected.setupMs) && connected.setupMs > 0, `setup ${connected.setupMs}`);
      assert.equal(connected.whipStatus, 201);
      assert.match(connected.sessionUrl ?? '', /\/whip\/sessions\/1\.\S+$/);
      assert.match(connected.relay ?? '', /^127\.0\.0\.1:\d+$/);

      // Once a second the page samples getStats: every plot fills with finite figures, and what
      // comes back (the echo of Chromium's beeping fake microphone) is not silence.
      await tab!
        .waitForFunction(
          ([series, points]) => {
            const { samples } = (window as unknown as { voiceEdgeDemo: DemoState }).voiceEdgeDemo;
            return (
              series.every(
                (name) => samples[name].filter((p) => Number.isFinite(p.value)).length >= points,
              ) && samples.levelOut.some((p) => p.value > 0.001)
            );
          },
          [SERIES, POINTS] as const,
          { timeout: 20_000, polling: 200 },
        )
        .catch(async (error: Error) => {
          const now = await demoState(tab!);
          const counts = SERIES.map((name) => `${name} ${JSON.stringify(now.samples[name])}`).join('; ');
          throw new Error(`plots did not fill (${error.message}): ${counts}`);
        });
      const call = await demoState(tab!);
      assert.equal(call.state, 'connected', call.error ?? '');
      for (const name of SERIES) {
        assert.ok(
          call.samples[name].every((p) => finite(p.value) && finite(p.t)),
          `${name} finite`,
        );
      }
      assert.ok(
        call.samples.rtt.every((p) => p.value >= 0 && p.value < 1_000),
        'RTT on loopback',
      );
      assert.ok(
        call.samples.loss.every((p) => p.value >= 0 && p.value <= 100),
        'loss is a percentage',
      );
      const levelIn = Math.max(...call.samples.levelIn.map((p) => p.value));
      const levelOut = Math.max(...call.samples.levelOut.map((p) => p.value));
      assert.ok(levelIn > 0.001, `the microphone level shows the fake microphone (${levelIn})`);
      assert.ok(levelOut > 0.001, `the level out shows the echo (${levelOut})`);
      // The setup time is shown as a number, with its parts.
      assert.match((await tab!.locator('#setup').textContent()) ?? '', /^\d+ ms$/);
      assert.match((await tab!.locator('#setup-parts').textContent()) ?? '', /WHIP offer → answer \d+ ms/);
      assert.equal(await tab!.locator('#message').isHidden(), true, 'no message while the call runs well');

      await tab!.screenshot({ path: `${artifacts}demo-page.png`, fullPage: true });
      t.diagnostic(`screenshot: ${artifacts}demo-page.png`);
      const dbfs = (level: number) => `${(20 * Math.log10(level)).toFixed(0)} dBFS`;
      t.diagnostic(
        `setup ${Math.round(call.setupMs!)} ms (microphone ${Math.round(call.setup.microphoneMs!)} ms, ` +
          `offer → answer ${Math.round(call.setup.offerToAnswerMs!)} ms, ICE + DTLS ${Math.round(call.setup.connectMs!)} ms); ` +
          `${call.samples.rtt.length} samples`,
      );
      t.diagnostic(
        `RTT (${call.rttSource}) last ${last(call.samples.rtt)?.toFixed(2)} ms; jitter last ${last(call.samples.jitter)?.toFixed(2)} ms; ` +
          `loss max ${Math.max(...call.samples.loss.map((p) => p.value)).toFixed(1)} %; ` +
          `level in max ${dbfs(levelIn)}, out max ${dbfs(levelOut)}; packets ${JSON.stringify(call.packets)}`,
      );

      await tab!.click('#hangup');
      const ended = await waitForState(tab!, ['ended'], 10_000);
      assert.equal(ended.hangUpStatus, 200);
      assert.equal(ended.error, null);
      assert.match((await tab!.locator('#message').textContent()) ?? '', /Call ended/);
      // The transceiver no longer knows the session: a second DELETE is 404.
      const again = await fetch(call.sessionUrl!, { method: 'DELETE' });
      assert.equal(again.status, 404);
      assert.equal(await tab!.locator('#talk').isEnabled(), true);
      assert.deepEqual(
        pageProblems.filter((line) => !/favicon/.test(line)),
        [],
        'no console errors (CSP violations show there)',
      );
    }));

  test('the edge ends the call: the page says so', (t) =>
    track(async () => {
      await tab!.click('#talk');
      const connected = await waitForState(tab!, ['connected'], 20_000);
      // Another client ends the session (anyone with the session URL can).
      assert.equal((await fetch(connected.sessionUrl!, { method: 'DELETE' })).status, 200);
      const deleted = Date.now();
      // The transceiver ends the call with a fatal-level DTLS close_notify: Chromium's connection
      // fails at once (docs/reliability.md).
      const ended = await waitForState(tab!, ['ended', 'failed'], 40_000);
      t.diagnostic(
        `ended by the edge: the page said so ${((Date.now() - deleted) / 1000).toFixed(1)} s after the DELETE; ` +
          `events: ${ended.events
            .filter((event) => /^(connection|ICE|DTLS|ended)/.test(event.text))
            .slice(-5)
            .map((event) => event.text.slice(0, 40))
            .join(' | ')}`,
      );
      assert.equal(ended.state, 'ended');
      assert.equal(ended.failure?.kind, 'edge');
      const message = (await tab!.locator('#message').textContent()) ?? '';
      assert.match(message, /The call ended from the edge's side/);
      await tab!.screenshot({ path: `${artifacts}demo-page-ended-by-edge.png`, fullPage: true });
    }));

  test('the microphone is refused: the page says so and asks to allow it', () =>
    track(async () => {
      const page = await context!.newPage();
      try {
        await page.addInitScript(() => {
          navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
        });
        await page.goto(edge!.url);
        await page.click('#talk');
        const failed = await waitForState(page, ['failed'], 10_000);
        assert.equal(failed.failure?.kind, 'microphone');
        assert.equal(failed.whipStatus, null, 'no offer was sent');
        const message = (await page.locator('#message').textContent()) ?? '';
        assert.match(message, /Microphone access was denied/);
        assert.match(message, /Allow the microphone/);
        assert.equal(await page.locator('#talk').isEnabled(), true);
      } finally {
        await page.close();
      }
    }));

  test('signaling answers 503 no capacity: the page shows the status, the detail and Retry-After', () =>
    track(async () => {
      // A signaling whose only transceiver cannot be reached: it has no capacity, by design.
      const dir = mkdtempSync(join(tmpdir(), 'voice-edge-demo-503-'));
      let signaling: SignalingHandle | undefined;
      const page = await context!.newPage();
      try {
        const routingFile = join(dir, 'routing.yaml');
        const api = `http://127.0.0.1:${await freeTcpPort()}`;
        writeFileSync(
          routingFile,
          stringify({
            clusterId: 1,
            generation: 1,
            transceivers: [{ id: 1, tunnel: '127.0.0.1:9', state: 'active', api }],
          }),
        );
        signaling = await startSignaling(
          SignalingConfigSchema.parse({
            http: { port: 0 },
            ops: { port: 0 },
            routingTable: { file: routingFile },
            placement: { retryAfterSeconds: RETRY_AFTER_SECONDS },
            // Nothing answers at `api`: the token is never checked, but signaling requires one.
            transceivers: { apiTokens: ['unused-token'] },
            shutdown: { drainMs: 0 },
          }),
          logger.child({ part: 'signaling-503' }),
        );
        await page.goto(`http://127.0.0.1:${signaling.httpPort}/`);
        await page.click('#talk');
        const failed = await waitForState(page, ['failed'], 10_000);
        assert.equal(failed.whipStatus, 503);
        assert.equal(failed.failure?.code, 'no-capacity');
        assert.equal(failed.failure?.retryAfterSeconds, RETRY_AFTER_SECONDS);
        const message = (await page.locator('#message').textContent()) ?? '';
        assert.match(message, /503 No capacity/);
        assert.match(message, /no active transceiver has room/);
        assert.match(message, new RegExp(`try again in ${RETRY_AFTER_SECONDS} s`));
        assert.equal(await page.locator('#talk').isEnabled(), true);
        await page.screenshot({ path: `${artifacts}demo-page-503.png`, fullPage: true });
      } finally {
        await page.close();
        await signaling?.shutdown();
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
