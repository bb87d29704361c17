// Runs pages/whip-call.html in a fresh browser context: a WHIP call with a fake microphone that
// checks silence, then beeps and listens for their echo. Returns what the page measured.
import type { Browser } from 'playwright-core';
import type { TestPages } from './test-pages.ts';

/** What the page puts on `window.result` (see pages/whip-call.html). */
export interface WhipCallResult {
  phase: string;
  error: string | null;
  userAgent: string;
  whipStatus: number | null;
  location: string | null;
  etag: string | null;
  offerToAnswerMs: number | null;
  setupMs: number | null;
  connectionStates: { state: string; ms: number }[];
  silentPacketsReceived: number | null;
  silentPeak: number | null;
  energyBefore: number | null;
  firstBeepSentMs: number | null;
  timeToEchoMs: number | null;
  echoLoopMs: number | null;
  echoesHeard: number;
  remotePeak: number;
  energyAfter: number | null;
  candidatePairRttMs: number | null;
  /** The selected candidate pair's remote candidate protocol: 'udp' or 'tcp'. */
  selectedProtocol: string | null;
  /** The answer's `a=candidate:` lines. */
  answerCandidates: string[];
  remoteInboundRttMs: number | null;
  packetsReceived: number | null;
  packetsLost: number | null;
  jitterMs: number | null;
  packetsSent: number | null;
  sentEnergy: number | null;
  hangUpStatus: number | null;
}

/**
 * Calls `whipUrl` from the page; `silentMs`: how long it listens while muted. Hangs up (DELETE)
 * when `hangUp` is set, then saves a screenshot to `screenshot` if given. The console lines come
 * back for failure messages.
 */
export async function runWhipCall(
  browser: Browser,
  pages: TestPages,
  whipUrl: string,
  options: { silentMs?: number; hangUp?: boolean; timeoutMs?: number; screenshot?: string } = {},
): Promise<{ result: WhipCallResult; hangUpStatus: number | undefined; console: string[] }> {
  const context = await browser.newContext({ permissions: ['microphone'] });
  const consoleLines: string[] = [];
  try {
    const tab = await context.newPage();
    tab.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    tab.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
    const query = new URLSearchParams({ whip: whipUrl, silentMs: String(options.silentMs ?? 1_500) });
    await tab.goto(`${pages.url('whip-call.html')}?${query}`);
    await tab.waitForFunction(
      () => {
        const phase = (window as unknown as { result?: WhipCallResult }).result?.phase;
        return phase === 'done' || phase === 'failed';
      },
      undefined,
      { timeout: options.timeoutMs ?? 60_000, polling: 100 },
    );
    const result = await tab.evaluate(() => (window as unknown as { result: WhipCallResult }).result);
    const hangUpStatus =
      options.hangUp && result.error === null
        ? await tab.evaluate(() => (window as unknown as { hangUp(): Promise<number> }).hangUp())
        : undefined;
    if (options.screenshot)
      await tab.screenshot({ path: options.screenshot, fullPage: true }).catch(() => {});
    return { result, hangUpStatus, console: consoleLines };
  } finally {
    await context.close().catch(() => {});
  }
}
