// Calls through the edge relay survive what happens to real ones (docs/global-tier.md), with a
// libwebrtc caller (@roamhq/wrtc) in the user namespace behind a NAT: the NAT forgets the mapping
// mid-call (the client reappears from a new public port), and the edge relay is killed and
// restarted mid-call (it resumes the flow from Redis). Needs root (network namespaces).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GlobalEdge, RELAY_PORT } from '../support/global-edge.ts';
import { ADDRESS, NS } from '../support/global-net.ts';
import { type Samples, sample } from '../support/prometheus.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

/** The NAT's public ports of the user's UDP flows to the edge relay (from conntrack's reply tuple). */
function publicPortsToEdge(conntrack: string): number[] {
  const ports: number[] = [];
  for (const line of conntrack.split('\n')) {
    const match = new RegExp(
      `src=10\\.77\\.1\\.2 dst=${ADDRESS.edge.replaceAll('.', '\\.')} sport=\\d+ dport=${RELAY_PORT} .*src=${ADDRESS.edge.replaceAll('.', '\\.')} dst=${ADDRESS.natPublic.replaceAll('.', '\\.')} sport=${RELAY_PORT} dport=(\\d+)`,
    ).exec(line);
    if (match) ports.push(Number(match[1]));
  }
  return ports;
}

const created = (samples: Samples, cause: 'stun' | 'redis' | 'ssrc') =>
  sample(samples, 'voice_edge_relay_flows_created_total', { cause });

describe('recovery through the edge relay', () => {
  let edge: GlobalEdge;
  let host: CallerHost;
  before(async () => {
    edge = await GlobalEdge.start();
    host = new CallerHost(edge.net.launcher(NS.user));
  });
  after(async () => {
    await host?.close();
    await edge?.stop();
  });

  test('the NAT mapping changes mid-call (conntrack flushed): audio continues', async (t) => {
    const caller = await host.call(edge.whipUrl, { toneHz: 440, timeoutMs: 15_000 });
    try {
      await caller.waitForEcho(8_000);
      const before = publicPortsToEdge(edge.net.natMappings());
      assert.equal(before.length, 1, `one mapping to the edge relay: ${edge.net.natMappings()}`);
      // A flow for the new address, made from the client's media (by SSRC) or, if a consent check
      // happened to be its first packet from there, from STUN.
      const moved = async (relay: 'edge' | 'c1') => {
        const metrics = await edge.relayMetrics(relay);
        return { ssrc: created(metrics, 'ssrc'), stun: created(metrics, 'stun') };
      };
      const edgeBefore = await moved('edge');
      const clusterBefore = await moved('c1');

      edge.net.flushNat();
      const flushedAt = Date.now();
      await caller.play(660);
      const echoMs = await caller.waitForEcho(15_000, 660);
      const gapMs = Date.now() - flushedAt;

      const afterPorts = publicPortsToEdge(edge.net.natMappings());
      const edgeAfter = await moved('edge');
      const clusterAfter = await moved('c1');
      t.diagnostic(
        `public port ${before[0]} → ${afterPorts.join(', ')}; the new tone echoed ${gapMs} ms after the flush; ` +
          `new flows at the edge relay by SSRC ${edgeAfter.ssrc - edgeBefore.ssrc}, by STUN ${edgeAfter.stun - edgeBefore.stun}; ` +
          `at the cluster relay by SSRC ${clusterAfter.ssrc - clusterBefore.ssrc}, by STUN ${clusterAfter.stun - clusterBefore.stun}`,
      );
      assert.equal(afterPorts.length, 1);
      assert.notEqual(afterPorts[0], before[0], 'the NAT gave the client a new public port');
      // The new address got a flow at the edge relay and, through it, at the cluster relay (the
      // transceiver kept the session): from the client's SRTP (docs/relay.md, NAT rebinding).
      const total = (after: { ssrc: number; stun: number }, before: { ssrc: number; stun: number }) =>
        after.ssrc - before.ssrc + after.stun - before.stun;
      assert.ok(total(edgeAfter, edgeBefore) >= 1, 'a flow for the new address at the edge relay');
      assert.ok(total(clusterAfter, clusterBefore) >= 1, 'and at the cluster relay');
      assert.equal(await caller.connectionState(), 'connected');
      assert.ok(echoMs < 15_000);
    } finally {
      await caller.hangUp();
    }
  });

  test('the edge relay is killed and restarted mid-call: it resumes the flow from Redis, audio continues', async (t) => {
    const caller = await host.call(edge.whipUrl, { toneHz: 440, timeoutMs: 15_000 });
    try {
      await caller.waitForEcho(8_000);
      // Flow records are written every 100 ms.
      await sleep(300);
      await edge.killEdgeRelay();
      const killedAt = Date.now();
      await edge.startEdgeRelay();
      const restartedMs = Date.now() - killedAt;
      await caller.play(550);
      const echoMs = await caller.waitForEcho(8_000, 550);
      const metrics = await edge.relayMetrics('edge');
      t.diagnostic(
        `edge relay back in ${restartedMs} ms; the new tone echoed ${echoMs} ms later; ` +
          `flows from Redis ${created(metrics, 'redis')}, from STUN ${created(metrics, 'stun')}`,
      );
      assert.ok(
        sample(metrics, 'voice_edge_relay_redis_lookups_total', { result: 'hit' }) >= 1,
        'the restarted edge relay found the flow in Redis',
      );
      assert.ok(created(metrics, 'redis') >= 1, 'and restored it from there');
      assert.equal(await caller.connectionState(), 'connected');
      // The cluster relay follows the edge's new tunnel port: replies reach the client again.
      const level = await caller.level(Date.now() - 1_000);
      assert.ok(level.level > 0.05, `audio level after the restart ${level.level}`);
    } finally {
      await caller.hangUp();
    }
  });
});
