// A full cluster overflows to the other (docs/global-tier.md): cluster 1 (us-east, nearest to the
// user's region eu) has room for one call; the second call from the same user goes to cluster 2
// (us-west), still through the user's edge relay, and both calls carry audio. Then, with both full,
// signaling answers 503. Needs root (network namespaces).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GlobalEdge } from '../support/global-edge.ts';
import { NS } from '../support/global-net.ts';
import { sample } from '../support/prometheus.ts';
import { waitUntil } from '../support/wait.ts';
import { CallerHost, type RemoteCaller } from '../support/wrtc-remote.ts';

describe('overflow between clusters', () => {
  let edge: GlobalEdge;
  let host: CallerHost;
  before(async () => {
    edge = await GlobalEdge.start({ capacity: { c1: 1, c2: 1 } });
    host = new CallerHost(edge.net.launcher(NS.user));
  });
  after(async () => {
    await host?.close();
    await edge?.stop();
  });

  test('a full cluster overflows to the other, through the same edge relay; then 503', async (t) => {
    const callers: RemoteCaller[] = [];
    try {
      const first = await host.call(edge.whipUrl, { toneHz: 440, timeoutMs: 15_000 });
      callers.push(first);
      assert.match(first.location, /^\/whip\/sessions\/1-100\./, 'the nearest cluster first');
      await first.waitForEcho(8_000);
      // Signaling learns cluster 1 is full from its own placement at once, and from the next poll.
      await waitUntil(
        async () => (await edge.status('c1')).sessions === 1,
        3_000,
        'cluster 1 to count the call',
      );

      const second = await host.call(edge.whipUrl, { toneHz: 660, timeoutMs: 15_000 });
      callers.push(second);
      assert.match(second.location, /^\/whip\/sessions\/2-100\./, 'cluster 1 is full: cluster 2');
      const echoMs = await second.waitForEcho(8_000, 660);
      await first.waitForEcho(3_000, 440);
      t.diagnostic(`the overflowed call (cluster 2) heard its echo ${echoMs} ms after connecting`);

      assert.equal((await edge.status('c1')).sessions, 1);
      assert.equal((await edge.status('c2')).sessions, 1);
      const signaling = await edge.signalingMetrics();
      const placed = (cluster: string, choice: string) =>
        sample(signaling, 'voice_edge_signaling_placements_total', { cluster, relay: 'edge', choice });
      assert.equal(placed('1', 'first'), 1);
      assert.equal(placed('2', 'overflow'), 1);
      // Both through the edge relay: cluster 2's relay answers through it too.
      const toEdge = async (direction: string) =>
        sample(await edge.relayMetrics('c2'), 'voice_edge_relay_packets_total', { direction });
      await waitUntil(
        async () => (await toEdge('to_edge')) > 50,
        5_000,
        'cluster 2 to answer through the edge',
      );
      assert.equal(await toEdge('to_client'), 0);

      // Both full: no capacity anywhere.
      await waitUntil(
        async () => (await edge.status('c2')).sessions === 1,
        3_000,
        'cluster 2 to count the call',
      );
      await assert.rejects(
        host.call(edge.whipUrl, { timeoutMs: 5_000 }),
        /WHIP POST answered 503: .*no-capacity/,
      );
    } finally {
      for (const caller of callers) await caller.hangUp().catch(() => {});
    }
  });
});
