// ICE-TCP end to end (docs/reaching-the-edge.md): Debian's Chromium calls the edge with UDP to the
// relay blocked by iptables (as a network that lets only TCP out does) and hears its echo over the
// relay's TCP port; with UDP open, the same browser picks UDP, which the answer ranks first. A relay
// restart closes the TCP connection: the call comes back by an ICE restart, in a measured time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { ChromiumEdge } from '../support/chromium-edge.ts';
import type { Edge } from '../support/edge.ts';
import { sample } from '../support/prometheus.ts';
import type { TestPages } from '../support/test-pages.ts';
import { toneCallerEvents } from '../support/tone-caller.ts';
import { blockUdp } from '../support/udp-block.ts';
import { waitUntil } from '../support/wait.ts';
import { runWhipCall, type WhipCallResult } from '../support/whip-call.ts';

const ECHO_DELAY_MS = 300;

function checkEchoCall(result: WhipCallResult): void {
  assert.equal(result.error, null, `the page failed in phase ${result.phase}: ${result.error}`);
  assert.equal(result.whipStatus, 201);
  assert.ok(
    result.connectionStates.some((s) => s.state === 'connected'),
    JSON.stringify(result.connectionStates),
  );
  assert.ok((result.silentPeak ?? 1) < 0.01, `peak level while muted: ${result.silentPeak}`);
  assert.ok(result.echoesHeard >= 3, `beeps heard back: ${result.echoesHeard}`);
  assert.ok(
    (result.echoLoopMs ?? 0) >= ECHO_DELAY_MS * 0.8 &&
      (result.echoLoopMs ?? Infinity) < ECHO_DELAY_MS + 2_000,
    `echo loop ${result.echoLoopMs} ms`,
  );
}

const tcpPackets = async (edge: Edge, direction: 'from_client' | 'to_client') =>
  sample(await edge.relayMetrics(), 'voice_edge_relay_tcp_packets_total', { direction });

/** The call is over at the edge: no session, and no TCP connection left at the relay. */
async function nothingLeft(edge: Edge): Promise<void> {
  await waitUntil(async () => (await edge.status(0)).sessions === 0, 5_000, 'the session to end');
  await waitUntil(
    async () => sample(await edge.relayMetrics(), 'voice_edge_relay_tcp_connections') === 0,
    10_000,
    'no TCP connection left',
  );
}

describe('ICE-TCP: a Chromium caller whose network blocks UDP', () => {
  let edge: Edge | undefined;
  let pages: TestPages | undefined;
  let browser: Browser | undefined;
  let setup: ChromiumEdge | undefined;

  before(async () => {
    setup = await ChromiumEdge.start({ echoDelayMs: ECHO_DELAY_MS, tcp: true });
    ({ edge, pages, browser } = setup);
  });

  after(() => setup?.stop());

  test('with UDP open, Chromium uses UDP: the TCP candidate ranks below it', async (t) => {
    const { result, hangUpStatus, console } = await runWhipCall(browser!, pages!, edge!.whipUrl, {
      hangUp: true,
    });
    assert.equal(result.error, null, console.join('\n'));
    checkEchoCall(result);
    assert.equal(result.selectedProtocol, 'udp');
    assert.equal(hangUpStatus, 200);
    t.diagnostic(`UDP: setup ${Math.round(result.setupMs!)} ms, RTT ${result.candidatePairRttMs} ms`);
    await waitUntil(async () => (await edge!.status(0)).sessions === 0, 5_000, 'the session to end');
  });

  test('with UDP to the relay blocked, Chromium connects over TCP and hears its echo', async (t) => {
    const fromBefore = await tcpPackets(edge!, 'from_client');
    const unblock = blockUdp(edge!.relayPort);
    try {
      const { result, hangUpStatus, console } = await runWhipCall(browser!, pages!, edge!.whipUrl, {
        hangUp: true,
      });
      assert.equal(result.error, null, `${console.join('\n')}\n${edge!.output}`);
      checkEchoCall(result);
      assert.equal(result.selectedProtocol, 'tcp');
      assert.equal(hangUpStatus, 200);
      const metrics = await edge!.relayMetrics();
      const from = sample(metrics, 'voice_edge_relay_tcp_packets_total', { direction: 'from_client' });
      const to = sample(metrics, 'voice_edge_relay_tcp_packets_total', { direction: 'to_client' });
      // Several seconds of 20 ms packets each way, all over TCP; fewer from the client, which is in
      // DTX between its beeps (the answer asks for it: docs/transceiver.md#audio).
      t.diagnostic(`over TCP: ${from - fromBefore} packets from the client, ${to} to it`);
      assert.ok(from - fromBefore > 40, `${from - fromBefore} packets from the client over TCP`);
      assert.ok(to > 100, `${to} packets to the client over TCP`);
      t.diagnostic(
        `TCP (UDP blocked): setup ${Math.round(result.setupMs!)} ms, RTT ${result.candidatePairRttMs} ms, ` +
          `echo loop ${Math.round(result.echoLoopMs!)} ms, ${result.packetsLost} of ${result.packetsReceived} lost`,
      );
      // The browser closes its TCP connection with the call: the relay holds nothing after.
      await nothingLeft(edge!);
    } finally {
      unblock();
    }
  });

  test('a relay restart closes the TCP connection; an ICE restart on disconnected brings the call back', async (t) => {
    const unblock = blockUdp(edge!.relayPort);
    const context = await browser!.newContext({ permissions: ['microphone'] });
    try {
      const tab = await context.newPage();
      await tab.goto(pages!.url('tone-caller.html'));
      await tab.evaluate((url) => {
        (window as unknown as { restartIceWhenLost: boolean }).restartIceWhenLost = true;
        return (window as unknown as { start(url: string): Promise<string> }).start(url);
      }, edge!.whipUrl);
      await tab.evaluate(() => (window as unknown as { talk(on: boolean): void }).talk(true));
      await waitUntil(
        async () => (await toneCallerEvents(tab)).some((e) => e.what === 'echo-on'),
        10_000,
        'the echo',
      );
      const killedAt = Date.now();
      await edge!.restartRelay();
      const relayBackMs = Date.now() - killedAt;
      await waitUntil(
        async () => (await toneCallerEvents(tab)).some((e) => e.what === 'echo-on' && e.wall > killedAt),
        20_000,
        'the echo after the restart',
      );
      const after = (await toneCallerEvents(tab)).filter((e) => e.wall >= killedAt);
      const at = (what: string) => after.find((e) => e.what === what)?.wall;
      assert.ok(at('echo-off'), 'the echo stopped with the relay');
      assert.ok(at('ice-restart'), JSON.stringify(after));
      const gapMs = at('echo-on')! - killedAt;
      t.diagnostic(
        `relay killed → back ${relayBackMs} ms; Chromium disconnected ${at('connection-disconnected')! - killedAt} ms; ` +
          `ICE restart answered ${at('ice-restart-answered-200')! - killedAt} ms; echo again ${gapMs} ms`,
      );
      // The new connection went through the restarted relay's TCP port, one connection.
      assert.equal(sample(await edge!.relayMetrics(), 'voice_edge_relay_tcp_connections'), 1);
      assert.equal((await edge!.status(0)).sessions, 1, 'the same session, restarted in place');
      await tab.evaluate(() => (window as unknown as { hangUp(): Promise<number> }).hangUp());
      await nothingLeft(edge!);
    } finally {
      unblock();
      await context.close().catch(() => {});
    }
  });
});
