// IPv6 only, end to end: the local edge (local/edge.ts: echo agent, transceiver, relay, signaling in
// this process) started on ::1, as `npm start -- --host ::1` starts it, called by Debian's Chromium
// (playwright-core, from a page served on ::1 too) and by libwebrtc (@roamhq/wrtc). The answer's
// only candidates are ::1 and no socket of the edge listens on IPv4, so the call, its relay flow and
// the relay ↔ transceiver tunnel are IPv6 throughout; each caller must hear itself come back. (The
// werift caller over ::1, through `npm start` and `npm run call`, is in local-edge.test.ts.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { type LocalEdge, startLocalEdge } from '../../local/edge.ts';
import { launchChromium } from '../support/chromium.ts';
import { freeUdpPort } from '../support/net.ts';
import { serveTestPages, type TestPages } from '../support/test-pages.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

const ECHO_DELAY_MS = 300;

/** What whip-call.html puts on `window.result` that this test reads (see chromium.test.ts). */
interface CallResult {
  phase: string;
  error: string | null;
  whipStatus: number | null;
  setupMs: number | null;
  connectionStates: { state: string; ms: number }[];
  echoesHeard: number;
  echoLoopMs: number | null;
  packetsReceived: number | null;
}

interface OwnSocket {
  readonly protocol: 'tcp' | 'udp';
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly listening: boolean;
}

/** /proc/net's `0100007F:1F90` or `00000000000000000000000001000000:1F90` (32-bit words in host order). */
function procAddress(text: string): { address: string; port: number } {
  const [hex, port] = text.split(':') as [string, string];
  const bytes = Buffer.from(hex, 'hex');
  for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const address =
    bytes.length === 4
      ? [...bytes].join('.')
      : new URL(`http://[${bytes.toString('hex').replace(/(.{4})(?!$)/g, '$1:')}]/`).hostname.slice(1, -1);
  return { address, port: Number.parseInt(port, 16) };
}

/** Every TCP and UDP socket this process holds (the relay's worker threads are in it too). */
function ownSockets(): OwnSocket[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const sockets: OwnSocket[] = [];
  for (const [file, protocol, family] of [
    ['tcp', 'tcp', 4],
    ['tcp6', 'tcp', 6],
    ['udp', 'udp', 4],
    ['udp6', 'udp', 6],
  ] as const) {
    for (const line of readFileSync(`/proc/net/${file}`, 'utf8').trim().split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (!inodes.has(fields[9]!)) continue;
      // TCP state 0A is LISTEN; a bound UDP socket is 07.
      sockets.push({ protocol, family, ...procAddress(fields[1]!), listening: fields[3] === '0A' });
    }
  }
  return sockets;
}

describe('IPv6 only: Chromium and libwebrtc through the local edge on ::1', () => {
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  let edge: LocalEdge | undefined;
  let relayPort = 0;
  let pages: TestPages | undefined;
  let browser: Browser | undefined;
  let before4: OwnSocket[] = [];
  const wrtcHost = new CallerHost();

  before(async () => {
    // No IPv6 loopback on this machine: the tests say so and skip.
    const probe = await freeUdpPort('::1').catch(() => undefined);
    if (probe === undefined) return;
    // IPv4 sockets the test process already holds (none expected; Playwright talks over a pipe).
    before4 = ownSockets().filter((socket) => socket.family === 4);
    relayPort = probe;
    edge = await startLocalEdge({ host: '::1', httpPort: 0, relayPort, echoDelayMs: ECHO_DELAY_MS }, logger);
    pages = await serveTestPages('::1');
    browser = await launchChromium();
  });

  after(async () => {
    await wrtcHost.close();
    await browser?.close().catch(() => {});
    pages?.close();
    await edge?.shutdown();
  });

  test('the edge prints bracketed URLs and holds no IPv4 socket but its loopback tunnel socket', (t) => {
    if (edge === undefined) return t.skip('no IPv6 loopback');
    assert.match(edge.whipUrl, /^http:\/\/\[::1\]:\d+\/whip$/);
    assert.match(edge.url, /^http:\/\/\[::1\]:\d+\/$/);
    const whipPort = Number(new URL(edge.whipUrl).port);
    const sockets = ownSockets();
    // Relay (UDP, and TCP for ICE-TCP), WHIP, the transceiver's tunnel and API, the echo agent: ::1.
    const relay = sockets.filter((socket) => socket.port === relayPort);
    assert.ok(
      relay.some((socket) => socket.protocol === 'udp'),
      JSON.stringify(sockets),
    );
    for (const socket of [...relay, ...sockets.filter((s) => s.listening)])
      assert.deepEqual([socket.family, socket.address], [6, '::1'], JSON.stringify(socket));
    assert.ok(sockets.some((socket) => socket.listening && socket.port === whipPort));
    // The relay always binds an IPv4 tunnel socket (on loopback for an IPv6 host: local/edge.ts); its
    // IPv6 one on ::1 is the one that reaches the transceiver.
    const new4 = sockets.filter(
      (socket) =>
        socket.family === 4 && !before4.some((b) => b.port === socket.port && b.protocol === socket.protocol),
    );
    for (const socket of new4) assert.deepEqual([socket.protocol, socket.address], ['udp', '127.0.0.1']);
    t.diagnostic(
      `sockets: ${sockets.map((s) => `${s.protocol}${s.family} ${s.family === 6 ? `[${s.address}]` : s.address}:${s.port}${s.listening ? ' listening' : ''}`).join(', ')}`,
    );
    assert.ok(new4.length <= 1, `IPv4 sockets: ${JSON.stringify(new4)}`);
  });

  test('Chromium: hears its own microphone come back, over ::1 only', async (t) => {
    if (edge === undefined) return t.skip('no IPv6 loopback');
    const context = await browser!.newContext({ permissions: ['microphone'] });
    const consoleLines: string[] = [];
    let tab: Page | undefined;
    let result: CallResult | undefined;
    let passed = false;
    try {
      tab = await context.newPage();
      tab.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
      const answered = tab.waitForResponse(
        (response) => response.url() === edge!.whipUrl && response.request().method() === 'POST',
      );
      const query = new URLSearchParams({ whip: edge.whipUrl, silentMs: '1000' });
      await tab.goto(`${pages!.url('whip-call.html')}?${query}`);
      await tab.waitForFunction(
        () => {
          const phase = (window as unknown as { result?: CallResult }).result?.phase;
          return phase === 'done' || phase === 'failed';
        },
        undefined,
        { timeout: 60_000, polling: 100 },
      );
      result = await tab.evaluate(() => (window as unknown as { result: CallResult }).result);
      assert.equal(result.error, null, `the page failed in phase ${result.phase}: ${result.error}`);
      assert.equal(result.whipStatus, 201);

      // The answer offers the relay on ::1 and nothing else: the only way the media can have gone.
      const answer = await (await answered).text();
      const candidates = answer.split(/\r?\n/).filter((line) => line.startsWith('a=candidate:'));
      assert.ok(candidates.length > 0, answer);
      for (const line of candidates) assert.equal(line.split(' ')[4], '::1', line);
      assert.ok(
        candidates.some(
          (line) => line.split(' ')[2]?.toLowerCase() === 'udp' && line.split(' ')[5] === String(relayPort),
        ),
        `a UDP candidate on the relay port: ${candidates.join(' | ')}`,
      );

      assert.ok(
        result.connectionStates.some((s) => s.state === 'connected'),
        `connected (states: ${JSON.stringify(result.connectionStates)})`,
      );
      assert.ok(result.echoesHeard >= 3, `beeps heard back: ${result.echoesHeard}`);
      assert.ok(
        typeof result.echoLoopMs === 'number' && result.echoLoopMs >= ECHO_DELAY_MS * 0.8,
        `echo loop ${result.echoLoopMs} ms (echo delay ${ECHO_DELAY_MS} ms)`,
      );
      t.diagnostic(
        `setup ${Math.round(result.setupMs ?? Number.NaN)} ms over [::1]:${relayPort}; ` +
          `${result.echoesHeard} beeps back, echo loop ${Math.round(result.echoLoopMs)} ms, ` +
          `${result.packetsReceived} packets received`,
      );
      const deleted = await tab.evaluate(() => (window as unknown as { hangUp(): Promise<number> }).hangUp());
      assert.equal(deleted, 200);
      passed = true;
    } finally {
      if (!passed) {
        t.diagnostic(`page console:\n${consoleLines.join('\n')}`);
        t.diagnostic(`page result: ${JSON.stringify(result)}`);
        t.diagnostic(`edge log:\n${logLines.slice(-60).join('')}`);
      }
      await context.close().catch(() => {});
    }
  });

  test('libwebrtc: a 440 Hz tone comes back over ::1', async (t) => {
    if (edge === undefined) return t.skip('no IPv6 loopback');
    const caller = await wrtcHost.call(edge.whipUrl, { toneHz: 440 });
    try {
      const echoMs = await caller.waitForEcho(5_000);
      const stats = await caller.stats();
      t.diagnostic(
        `setup ${caller.setupMs} ms, first echo ${echoMs} ms after connecting, RTT ${stats.rttMs} ms`,
      );
      assert.ok(stats.packetsReceived > 0);
    } finally {
      assert.equal(await caller.hangUp(), 200);
    }
  });
});
