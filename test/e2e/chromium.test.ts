// End to end with a real browser: Debian's Chromium (driven by playwright-core) makes a WHIP call
// through signaling → relay → transceiver → echo agent and hears its own fake microphone come back.
// The page (pages/whip-call.html) does the call and the measuring; this file starts everything,
// checks the figures the page reports, and keeps a screenshot in test-artifacts/ for people.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { ChromiumEdge } from '../support/chromium-edge.ts';
import type { Edge } from '../support/edge.ts';
import { sample } from '../support/prometheus.ts';
import type { TestPages } from '../support/test-pages.ts';
import { runWhipCall } from '../support/whip-call.ts';

const ECHO_DELAY_MS = 300;
/** How long the page listens while muted: longer than the echo delay, so an echo would show. */
const SILENT_MS = 1_500;
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const finite = (value: number | null): value is number => typeof value === 'number' && Number.isFinite(value);

describe('a Chromium caller through the whole edge', () => {
  let edge: Edge | undefined;
  let pages: TestPages | undefined;
  let browser: Browser | undefined;
  let setup: ChromiumEdge | undefined;

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    setup = await ChromiumEdge.start({ echoDelayMs: ECHO_DELAY_MS });
    ({ edge, pages, browser } = setup);
  });

  after(() => setup?.stop());

  test('hears its own microphone come back after the echo delay; hang-up frees the session', async (t) => {
    let outcome: Awaited<ReturnType<typeof runWhipCall>> | undefined;
    let passed = false;
    const screenshot = `${artifacts}chromium-whip-call.png`;
    try {
      outcome = await runWhipCall(browser!, pages!, edge!.whipUrl, {
        silentMs: SILENT_MS,
        hangUp: true,
        screenshot,
      });
      const { result } = outcome;
      assert.equal(result.error, null, `the page failed in phase ${result.phase}: ${result.error}`);

      // WHIP: 201 with a session URL (read across origins thanks to CORS) and an ETag.
      assert.equal(result.whipStatus, 201);
      assert.match(result.location ?? '', /^\/whip\/sessions\/\d+\.\S+$/);
      assert.ok(result.etag, 'the answer carries an ETag');
      assert.ok(
        result.connectionStates.some((s) => s.state === 'connected'),
        `connected (states: ${JSON.stringify(result.connectionStates)})`,
      );

      // While muted, media flows but what comes back is silence: nothing to hear before we speak.
      assert.ok(
        (result.silentPacketsReceived ?? 0) >= 25,
        `packets received while muted: ${result.silentPacketsReceived}`,
      );
      assert.ok((result.silentPeak ?? 1) < 0.01, `peak level while muted: ${result.silentPeak}`);
      // Once unmuted the beeps come back, no sooner than the echo delay after they were sent.
      assert.ok(result.echoesHeard >= 3, `beeps heard back: ${result.echoesHeard}`);
      assert.ok(finite(result.timeToEchoMs), 'time to the first echo');
      assert.ok(finite(result.echoLoopMs), 'the page saw its own first beep go out');
      assert.ok(
        result.echoLoopMs >= ECHO_DELAY_MS * 0.8,
        `echo loop ${result.echoLoopMs} ms, shorter than the echo delay (${ECHO_DELAY_MS} ms): heard before it was sent?`,
      );
      assert.ok(result.echoLoopMs < ECHO_DELAY_MS + 2_000, `echo loop ${result.echoLoopMs} ms`);
      // The same from getStats (inbound-rtp totalAudioEnergy): silence until we sent sound.
      const energy = `received audio energy before unmuting ${result.energyBefore}, after ${result.energyAfter}`;
      assert.ok(finite(result.energyBefore) && result.energyBefore < 1e-4, energy);
      assert.ok(finite(result.energyAfter) && result.energyAfter > result.energyBefore + 0.01, energy);

      // Figures: setup time and RTT are measured.
      assert.ok(finite(result.setupMs), `setup ms: ${result.setupMs}`);
      const rtt = finite(result.candidatePairRttMs) ? result.candidatePairRttMs : result.remoteInboundRttMs;
      assert.ok(
        finite(rtt),
        `an RTT from getStats: ${result.candidatePairRttMs} / ${result.remoteInboundRttMs}`,
      );
      assert.ok((result.packetsReceived ?? 0) > result.silentPacketsReceived!, 'packets kept arriving');

      t.diagnostic(`browser: ${result.userAgent}`);
      t.diagnostic(
        `setup ${Math.round(result.setupMs)} ms (offer → answer ${Math.round(result.offerToAnswerMs!)} ms); ` +
          `RTT ${fmt(result.candidatePairRttMs)} (ICE pair), ${fmt(result.remoteInboundRttMs)} (RTCP)`,
      );
      t.diagnostic(
        `unmute → first echo ${Math.round(result.timeToEchoMs)} ms; beep sent → beep heard ` +
          `${Math.round(result.echoLoopMs)} ms (echo delay ${ECHO_DELAY_MS} ms); ` +
          `${result.echoesHeard} beeps back, peak ${result.remotePeak.toFixed(3)}`,
      );
      t.diagnostic(
        `packets received ${result.packetsReceived}, lost ${result.packetsLost}, jitter ${fmt(result.jitterMs)}; ` +
          `energy before/after unmute ${result.energyBefore?.toExponential(2)} / ${result.energyAfter?.toExponential(2)}`,
      );

      // Hang up from the page (a cross-origin DELETE, so CORS preflight included): the session ends.
      assert.equal(outcome.hangUpStatus, 200);
      await waitUntil(async () => (await edge!.status(0)).sessions === 0, 5_000, 'the session to end');

      // The answer told Chromium the edge hears Opus up to the backend's 16 kHz (maxplaybackrate,
      // RFC 7587): it sent wideband, which costs a third less to decode than its fullband default.
      const metrics = await edge!.transceiverMetrics(0);
      const decoded = (bandwidth: string) =>
        sample(metrics, 'voice_edge_transceiver_opus_packets_decoded_total', { bandwidth });
      const byBandwidth = ['narrowband', 'mediumband', 'wideband', 'superwideband', 'fullband'].map(
        (bandwidth) => `${bandwidth} ${decoded(bandwidth)}`,
      );
      t.diagnostic(`Opus packets decoded by bandwidth: ${byBandwidth.join(', ')}`);
      assert.ok(decoded('wideband') >= 20, byBandwidth.join(', '));
      assert.equal(decoded('superwideband') + decoded('fullband'), 0, byBandwidth.join(', '));
      // The answer also asked for DTX (usedtx=1): while muted and between beeps Chromium sent a
      // packet every 400 ms or so instead of 50 a second, and the transceiver made those frames up
      // for the backend (counted apart from loss).
      const dtxFrames = sample(metrics, 'voice_edge_transceiver_caller_dtx_frames_total');
      t.diagnostic(`frames Chromium left unsent in DTX, made up for the backend: ${dtxFrames}`);
      assert.ok(dtxFrames >= 50, `DTX frames: ${dtxFrames}`);
      passed = true;
    } finally {
      t.diagnostic(`screenshot: ${screenshot}`);
      writeFileSync(
        `${artifacts}chromium-whip-call.json`,
        `${JSON.stringify(outcome?.result ?? null, null, 2)}\n`,
      );
      if (!passed) {
        writeFileSync(`${artifacts}chromium-edge.log`, edge?.output ?? '');
        t.diagnostic(`page console:\n${outcome?.console.join('\n')}`);
        t.diagnostic(`page result: ${JSON.stringify(outcome?.result)}`);
        t.diagnostic(`edge output (also in ${artifacts}chromium-edge.log):\n${edge?.output}`);
      }
    }
  });
});

function fmt(ms: number | null): string {
  return finite(ms) ? `${ms.toFixed(1)} ms` : 'n/a';
}
