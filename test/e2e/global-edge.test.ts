// The global relay tier end to end, in simulated regions (test/support/global-net.ts): a user
// behind a NAT, 5 ms from an edge relay that is 35 ms from the clusters over a clean backbone,
// while the direct path to a cluster is 60 ms ±12 with 3 % loss each way. Signaling puts the user's
// call through the edge (its address is in the edge's client range); a call that names region
// us-east goes straight to cluster 1. Needs root (network namespaces).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GlobalEdge, RELAY_PORT } from '../support/global-edge.ts';
import { ADDRESS, NS } from '../support/global-net.ts';
import { parsePrometheus, sample } from '../support/prometheus.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

describe('calls through the edge relay, in simulated regions', () => {
  let edge: GlobalEdge;
  before(async () => {
    edge = await GlobalEdge.start();
  });
  after(() => edge?.stop());

  test('a werift call via the edge works and its RTT, jitter and loss beat the direct path', async (t) => {
    const c1Before = await edge.relayMetrics('c1');
    const viaEdge = await edge.callFromUser({ durationS: 8 });
    assert.equal(viaEdge.code, 0, `${viaEdge.stderr}\n${edge.output}`);
    const afterEdge = await edge.relayMetrics('c1');
    const edgeRelay = await edge.relayMetrics('edge');
    // The path: the edge forwarded the client's packets to a peer, cluster 1's relay sent the
    // replies back through the edge (and none straight to the client).
    assert.ok(sample(edgeRelay, 'voice_edge_relay_packets_total', { direction: 'to_peer' }) > 300);
    assert.ok(sample(edgeRelay, 'voice_edge_relay_packets_total', { direction: 'to_client' }) > 300);
    const delta = (samples: typeof c1Before, direction: string) =>
      sample(samples, 'voice_edge_relay_packets_total', { direction }) -
      sample(c1Before, 'voice_edge_relay_packets_total', { direction });
    assert.ok(delta(afterEdge, 'to_edge') > 300, 'cluster 1 answered through the edge');
    assert.equal(delta(afterEdge, 'to_client'), 0, 'and never to the client directly');
    const e = viaEdge.figures;
    assert.ok(e.echoDetected, 'the call via the edge hears its echo');
    // The emulated round trip via the edge is 80 ms; the path is clean.
    assert.ok(e.rttMs !== null && e.rttMs >= 78 && e.rttMs < 115, `RTT via the edge ${e.rttMs} ms`);
    assert.ok(e.lossRatio !== null && e.lossRatio < 0.01, `loss via the clean edge path ${e.lossRatio}`);
    assert.ok(e.jitterMs !== null);

    // The direct path loses 3 % each way, and a lost DTLS flight can stall werift's handshake there
    // (ICE connected, DTLS not done in the caller's 15 s; seen in CI, never via the edge). Such a
    // failed setup is the direct path losing, reported; the figures are compared on the first direct
    // call that connects, and after three failed setups the edge has won on setup alone.
    let direct: Awaited<ReturnType<typeof edge.callFromUser>> | undefined;
    const failedSetups: string[] = [];
    for (let attempt = 0; attempt < 3 && direct === undefined; attempt++) {
      const call = await edge.callFromUser({ durationS: 8, region: 'us-east' });
      if (call.code === 0) direct = call;
      else if (call.figures.connected === false) failedSetups.push(call.figures.error ?? `exit ${call.code}`);
      else assert.fail(`direct call failed after connecting: ${call.stderr}\n${edge.output}`);
    }
    if (failedSetups.length > 0)
      t.diagnostic(
        `direct calls that did not set up over the lossy path: ${failedSetups.length} (${failedSetups[0]})`,
      );
    if (direct === undefined) {
      t.diagnostic('no direct call set up in 3 attempts; via the edge it did at once');
      return;
    }
    const afterDirect = await edge.relayMetrics('c1');
    assert.ok(
      sample(afterDirect, 'voice_edge_relay_packets_total', { direction: 'to_client' }) > 300,
      'the direct call went straight to cluster 1',
    );

    const d = direct.figures;
    t.diagnostic(
      `via edge: RTT ${e.rttMs} ms, jitter ${e.jitterMs} ms, loss ${e.lossRatio}, setup ${e.setupMs} ms; ` +
        `direct: RTT ${d.rttMs} ms, jitter ${d.jitterMs} ms, loss ${d.lossRatio}, setup ${d.setupMs} ms`,
    );
    assert.ok(d.echoDetected, 'the direct call hears its echo');
    assert.ok(d.rttMs !== null);
    // The emulated direct round trip is 120 ms + jitter.
    assert.ok(
      d.rttMs > e.rttMs + 15,
      `direct RTT ${d.rttMs} ms is not worse than via the edge (${e.rttMs} ms)`,
    );
    assert.ok(d.jitterMs !== null && e.jitterMs < d.jitterMs, 'jitter');
    assert.ok(d.lossRatio !== null);
    assert.ok(d.lossRatio > e.lossRatio, `direct loss ${d.lossRatio} vs via edge ${e.lossRatio}`);
  });

  test('a libwebrtc caller (@roamhq/wrtc) in the user namespace: via the edge, echo heard, RTT from RTCP', async (t) => {
    const host = new CallerHost(edge.net.launcher(NS.user));
    try {
      const caller = await host.call(edge.whipUrl, { toneHz: 440, timeoutMs: 15_000 });
      try {
        assert.match(caller.location, /^\/whip\/sessions\/1-100\./, 'placed in cluster 1');
        const echoMs = await caller.waitForEcho(8_000);
        // RTCP receiver reports arrive every few seconds: wait for one that has an RTT.
        let stats = await caller.stats();
        for (let i = 0; i < 40 && stats.rttMs === null; i++) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          stats = await caller.stats();
        }
        t.diagnostic(
          `setup ${caller.setupMs} ms, echo after ${echoMs} ms, RTT ${stats.rttMs} ms, jitter ${stats.jitterMs} ms, ` +
            `lost ${stats.packetsLost} of ${stats.packetsReceived + stats.packetsLost}`,
        );
        assert.ok(stats.rttMs !== null, 'libwebrtc reported an RTT');
        assert.ok(stats.rttMs >= 78 && stats.rttMs < 130, `RTT via the edge ${stats.rttMs} ms`);
        assert.ok(stats.packetsReceived > 50);
      } finally {
        assert.equal(await caller.hangUp(), 200);
      }
    } finally {
      await host.close();
    }
  });

  test('a libwebrtc caller whose network blocks UDP reaches the edge relay over ICE-TCP; the edge forwards over UDP', async (t) => {
    // The user's own firewall: no UDP to the edge relay, as on a network that lets only TCP out.
    const rule = ['OUTPUT', '-p', 'udp', '-d', ADDRESS.edge, '--dport', String(RELAY_PORT), '-j', 'DROP'];
    edge.net.exec(NS.user, 'iptables', '-w', '-I', ...rule);
    const edgeTcp = async (direction: string) =>
      sample(
        parsePrometheus(await (await fetch(`http://${ADDRESS.edge}:9090/metrics`)).text()),
        'voice_edge_relay_tcp_packets_total',
        { direction },
      );
    const host = new CallerHost(edge.net.launcher(NS.user));
    try {
      const before = await edgeTcp('from_client');
      const caller = await host.call(edge.whipUrl, { toneHz: 440, timeoutMs: 20_000 });
      try {
        const echoMs = await caller.waitForEcho(10_000);
        // 20 ms packets both ways keep coming over the caller's TCP connection.
        const deadline = Date.now() + 5_000;
        const enough = async () =>
          (await edgeTcp('from_client')) - before >= 100 && (await edgeTcp('to_client')) >= 100;
        while (!(await enough()) && Date.now() < deadline) await sleep(100);
        const carried = (await edgeTcp('from_client')) - before;
        t.diagnostic(
          `over TCP to the edge: setup ${caller.setupMs} ms, echo after ${echoMs} ms, ${carried} packets`,
        );
        assert.ok(carried >= 100, `${carried} packets from the caller over TCP`);
        assert.ok((await edgeTcp('to_client')) >= 100, 'and to it');
      } finally {
        assert.equal(await caller.hangUp(), 200);
      }
    } finally {
      await host.close();
      edge.net.exec(NS.user, 'iptables', '-w', '-D', ...rule);
    }
  });
});
