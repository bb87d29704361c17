// Calls that hold when the path changes (docs/reliability.md): Debian's Chromium talks to the edge
// through a UDP proxy on loopback that stands for its NAT. The proxy rebinds the caller (its packets
// leave from a new port; what is sent to the old one is lost) while the echo agent returns the
// caller's audio, and the gap in the audio the caller receives is measured at the proxy, packet by
// packet. The relay finds the session by the SRTP's SSRC and the transceiver moves the media after one
// challenge round trip, with no ICE check needed. Then the relay is killed and restarted with Redis,
// once with the caller's address unchanged (found by address) and once rebound while the relay was
// down (found by SSRC in Redis, as another replica would find it).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { Edge } from '../support/edge.ts';
import { type Samples, sample } from '../support/prometheus.ts';
import { RedisServer } from '../support/redis-server.ts';
import { serveTestPages, type TestPages } from '../support/test-pages.ts';
import { toneCallerEvents } from '../support/tone-caller.ts';
import { lossBetween, type ProxiedClient, UdpProxy } from '../support/udp-proxy.ts';
import { waitUntil } from '../support/wait.ts';

const REBINDS = 12;
/** Time between rebinds: longer than any recovery, shorter than Chromium's consent checks matter. */
const REBIND_EVERY_MS = 1_500;

/**
 * The audio missing at the caller after `at`: from the last packet received before it to the first
 * after, minus the 20 ms one packet would have taken anyway (0 when nothing was missed).
 */
function gapAfter(client: ProxiedClient, at: number): number {
  const before = client.received.filter((item) => item.at <= at).at(-1);
  const next = client.received.find((item) => item.at > at);
  assert.ok(before && next, `audio before and after ${at}`);
  return Math.max(0, next.at - before.at - 20);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('calls that hold: NAT rebinding and relay restarts, with Chromium', () => {
  let redis: RedisServer | undefined;
  let proxy: UdpProxy | undefined;
  let edge: Edge | undefined;
  let pages: TestPages | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let tab: Page | undefined;
  let caller: ProxiedClient | undefined;
  let sessionUrl: URL | undefined;

  before(async () => {
    redis = await RedisServer.start();
    // The proxy is the caller's way to the relay: the answer names it, and it forwards to the relay.
    proxy = await UdpProxy.start({ address: '127.0.0.1', port: 9 });
    const viaProxy = [`127.0.0.1:${proxy.port}`];
    edge = await Edge.start({
      transceiver: { relays: viaProxy },
      signaling: { relays: viaProxy },
      relay: { redis: { url: redis.url, ttlSeconds: 60 } },
    });
    proxy.target = { address: '127.0.0.1', port: edge.relayPort };
    pages = await serveTestPages();
    browser = await launchChromium();
    context = await browser.newContext({ permissions: ['microphone'] });
    tab = await context.newPage();
    await tab.goto(pages.url('tone-caller.html'));
    const location = await tab.evaluate(
      (url) => (window as unknown as { start(url: string): Promise<string> }).start(url),
      edge.whipUrl,
    );
    sessionUrl = new URL(location, edge.whipUrl);
    await tab.evaluate(() => (window as unknown as { talk(on: boolean): void }).talk(true));
    await waitUntil(
      async () => (await toneCallerEvents(tab!)).some((e) => e.what === 'echo-on'),
      10_000,
      'the echo',
    );
    caller = [...proxy.clients.values()].find((client) => client.received.length > 0);
    assert.ok(caller, 'the caller talks through the proxy');
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    pages?.close();
    proxy?.close();
    await edge?.stop();
    await redis?.stop();
  });

  test(`${REBINDS} NAT rebindings: the media follows the caller in one round trip`, async (t) => {
    const relayBefore = await edge!.relayMetrics();
    const created = (metrics: Samples, cause: string) =>
      sample(metrics, 'voice_edge_relay_flows_created_total', { cause });
    const bySsrcBefore = created(relayBefore, 'ssrc');
    const byStunBefore = created(relayBefore, 'stun');
    const gaps: number[] = [];
    const lost: number[] = [];
    for (let i = 0; i < REBINDS; i++) {
      const at = Date.now();
      await proxy!.rebind(caller!);
      await sleep(REBIND_EVERY_MS);
      gaps.push(gapAfter(caller!, at));
      lost.push(lossBetween(caller!, at - 200, Date.now()).lost);
    }
    const p50 = percentile(gaps, 50);
    const p95 = percentile(gaps, 95);
    const relayAfter = await edge!.relayMetrics();
    const bySsrc = created(relayAfter, 'ssrc') - bySsrcBefore;
    const byStun = created(relayAfter, 'stun') - byStunBefore;
    t.diagnostic(
      `audio gap at the caller after a NAT rebinding (${REBINDS} rebinds, Chromium): p50 ${p50} ms, ` +
        `p95 ${p95} ms, max ${Math.max(...gaps)} ms; packets lost each: ${lost.join(' ')}; gaps: ${gaps.join(' ')}; ` +
        `flows for the new addresses by SSRC ${bySsrc}, by STUN ${byStun}`,
    );
    // One flow per rebinding, made from the media: the first packet from the new address is RTP but
    // when a consent check (one every 2.5 s, against 50 RTP packets a second) happens to lead.
    assert.equal(bySsrc + byStun, REBINDS);
    assert.ok(bySsrc >= REBINDS - 2, `${bySsrc} of ${REBINDS} moves made by SSRC`);
    // Chromium checks a stable pair every 2.5 s: waiting for its check would leave gaps of up to that.
    assert.ok(p95 <= 250, `p95 gap ${p95} ms (gaps ${gaps.join(' ')})`);
    assert.equal((await edge!.status(0)).sessions, 1, 'the same session all along');
  });

  for (const [round, rebound] of [false, false, false, true].entries()) {
    test(`a relay restart with Redis${rebound ? ', the caller rebound while it was down (found by SSRC)' : ` (${round + 1})`}: audio again at once`, async (t) => {
      const killedAt = Date.now();
      const restarting = edge!.restartRelay();
      if (rebound) await proxy!.rebind(caller!);
      await restarting;
      const readyAt = Date.now();
      await sleep(1_000);
      const next = caller!.received.find((item) => item.at > readyAt);
      assert.ok(next, 'audio after the restart');
      // The time the relay was away is the restart's; what the edge adds after it is the measure.
      const afterReadyMs = next.at - readyAt;
      t.diagnostic(
        `relay restart with Redis${rebound ? ' + rebinding' : ''}: relay away ${readyAt - killedAt} ms, ` +
          `first audio at the caller ${afterReadyMs} ms after it was ready`,
      );
      // The new relay made the caller's flow from its media: by SSRC (a candidate its transceiver answered)
      // or by address, both from Redis. A consent check that happened to come first would make it from
      // STUN, as before; the media's path is the one measured (relay-redis.test.ts covers both exactly).
      const metrics = await edge!.relayMetrics();
      const created = (cause: string) => sample(metrics, 'voice_edge_relay_flows_created_total', { cause });
      t.diagnostic(
        `flows made by the new relay: ssrc ${created('ssrc')}, redis ${created('redis')}, stun ${created('stun')}`,
      );
      assert.ok(created(rebound ? 'ssrc' : 'redis') + created('stun') >= 1);
      assert.ok(afterReadyMs <= 200, `first audio ${afterReadyMs} ms after the relay was ready`);
      assert.equal((await edge!.status(0)).sessions, 1);
    });
  }
  test('the edge ends the call: Chromium leaves `connected` within a second, on a call long past its first checks', async (t) => {
    // By now the call is over 30 s old: Chromium checks its pair every 2.5 s, so a refused check
    // alone would take up to that. The fatal-level close_notify fails its DTLS transport at once.
    const deleted = Date.now();
    assert.equal((await fetch(sessionUrl!, { method: 'DELETE' })).status, 200, 'ended from outside the page');
    let left: { what: string; wall: number } | undefined;
    await waitUntil(
      async () => {
        left = (await toneCallerEvents(tab!)).find(
          (e) => e.wall >= deleted && /^connection-(failed|disconnected|closed)$/.test(e.what),
        );
        return left !== undefined;
      },
      5_000,
      "Chromium's connection to leave 'connected'",
    );
    const ms = left!.wall - deleted;
    t.diagnostic(`edge ended the call: Chromium ${left!.what} ${ms} ms after the DELETE was sent`);
    assert.ok(ms <= 1_000, `${left!.what} after ${ms} ms`);
    await waitUntil(async () => (await edge!.status(0)).sessions === 0, 3_000, 'no session at the edge');
  });
});
