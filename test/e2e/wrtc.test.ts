// End to end with libwebrtc (@roamhq/wrtc) callers: WHIP → signaling → relay → transceiver → backend.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeStun, StunAttr, StunType } from '../../protocol/stun.ts';
import { encodeTunnelPacket } from '../../protocol/tunnel.ts';
import { Edge } from '../support/edge.ts';
import { UdpEndpoint } from '../support/net.ts';
import { sample } from '../support/prometheus.ts';
import { startScriptedBackend } from '../support/scripted-backend.ts';
import { waitUntil } from '../support/wait.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

const host = new CallerHost();
after(() => host.close());

async function sessions(edge: Edge, index = 0): Promise<number> {
  return (await edge.status(index)).sessions;
}

/** Calls held at once on one transceiver (see the test). */
const CONCURRENT_CALLS = 24;
describe('calls through the edge (echo agent)', () => {
  let edge: Edge;
  before(async () => {
    edge = await Edge.start({ transceivers: 2, echoDelayMs: 200 });
  });
  after(() => edge.stop());

  test('a 440 Hz tone comes back at 440 Hz; data-channel messages are echoed; hang-up frees the session', async (t) => {
    const caller = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      assert.match(caller.location, /^\/whip\/sessions\/\d+\.[0-9a-f-]+$/);
      const echoMs = await caller.waitForEcho(5_000);
      await caller.sendMessage('hello');
      await caller.waitForMessage('echo: hello');
      t.diagnostic(`setup ${caller.setupMs} ms, first echo ${echoMs} ms after connecting`);
    } finally {
      assert.equal(await caller.hangUp(), 200);
    }
    await waitUntil(
      async () => (await sessions(edge, 0)) + (await sessions(edge, 1)) === 0,
      3_000,
      'sessions to end',
    );
  });

  test('ICE restart mid-call: audio keeps flowing both ways', async () => {
    const caller = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      await caller.waitForEcho(5_000);
      const response = await caller.restartIce();
      assert.equal(response.status, 200);
      assert.ok(response.etag, 'the new ICE session is named by an ETag');
      await caller.play(660);
      await caller.waitForEcho(8_000, 660);
      assert.equal(await caller.connectionState(), 'connected');
    } finally {
      await caller.hangUp();
    }
  });

  test('draining: new calls go to the other transceiver, the call in progress continues', async () => {
    const first = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      await first.waitForEcho(5_000);
      const busy = first.location.split('/').at(-1)!.split('.')[0];
      const index = edge.transceivers.findIndex((t) => String(t.id) === busy);
      assert.ok(index >= 0);
      const drained = await edge.transceiverApi(index, '/drain', { method: 'POST' });
      assert.equal(drained.status, 200);
      edge.writeRouting(edge.transceivers.map((_, i) => (i === index ? 'draining' : 'active')));
      await waitUntil(async () => (await edge.status(index)).state === 'draining', 3_000, 'draining');
      await sleep(500); // signaling's status cache refreshes every 200 ms in the test edge
      for (let i = 0; i < 3; i++) {
        const next = await host.call(edge.whipUrl, { toneHz: 550 });
        try {
          assert.notEqual(
            next.location.split('/').at(-1)!.split('.')[0],
            busy,
            'a new call avoids the draining transceiver',
          );
          await next.waitForEcho(5_000);
        } finally {
          await next.hangUp();
        }
      }
      await first.play(330);
      await first.waitForEcho(5_000, 330);
      assert.equal(await sessions(edge, index), 1, 'the call in progress is still there');
    } finally {
      await first.hangUp();
      edge.writeRouting(edge.transceivers.map(() => 'active'));
    }
  });

  test('a forged Binding request with the right ufrag and a wrong integrity is never answered or nominated', async () => {
    // Open a session through the API of a transceiver that takes calls (the draining test drained
    // one): its ufrag is in the answer. No client ever connects to it.
    const states = await Promise.all(edge.transceivers.map((_, i) => edge.status(i)));
    const targetIndex = states.findIndex((status) => status.state === 'active');
    const target = edge.transceivers[targetIndex]!;
    const { caller: offerer, sdp } = await host.offer();
    try {
      const created = await edge.transceiverApi(targetIndex, '/sessions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ offer: sdp }),
      });
      assert.equal(created.status, 201);
      const { ufrag, sessionId } = (await created.json()) as { ufrag: string; sessionId: string };
      const attacker = await UdpEndpoint.open();
      const forged = encodeStun({
        type: StunType.BindingRequest,
        transactionId: randomBytes(12),
        attributes: [
          { type: StunAttr.Username, value: Buffer.from(`${ufrag}:evil`) },
          { type: StunAttr.UseCandidate, value: Buffer.alloc(0) },
          { type: StunAttr.IceControlling, value: randomBytes(8) },
        ],
        integrityKey: 'not-the-password-of-this-ufrag',
        fingerprint: true,
      });
      const before = sample(
        await edge.transceiverMetrics(targetIndex),
        'voice_edge_transceiver_tunnel_drops_total',
        {
          reason: 'stun_bad_integrity',
        },
      );
      const victim = { family: 4 as const, address: '127.0.0.66', port: 4242 };
      for (let i = 0; i < 5; i++) {
        await attacker.send(encodeTunnelPacket(victim, forged), target.tunnelPort, '127.0.0.1');
      }
      assert.ok(await attacker.silentFor(500), 'no STUN response, no DTLS, nothing at all');
      const after = sample(
        await edge.transceiverMetrics(targetIndex),
        'voice_edge_transceiver_tunnel_drops_total',
        {
          reason: 'stun_bad_integrity',
        },
      );
      assert.equal(after - before, 5);
      // Data "from" the forged address is not accepted either: it was never bound to the session.
      await attacker.send(
        encodeTunnelPacket(victim, Buffer.from([22, 254, 253])),
        target.tunnelPort,
        '127.0.0.1',
      );
      assert.ok(await attacker.silentFor(200));
      await attacker.close();
      await edge.transceiverApi(targetIndex, `/sessions/${sessionId}`, { method: 'DELETE' });
    } finally {
      await offerer.close();
    }
  });
});

describe('calls through one transceiver', () => {
  // How many calls one transceiver carries is the benchmark's figure (npm run bench:transceiver, on a
  // core of its own). Here the libwebrtc callers, which cost about a core at this load, share the
  // machine's two cores with the whole edge: on the project's current CI machines 50 calls saturate
  // both cores and setups fail past 38–44 calls (with this code and with the code before it), and
  // at 30 a call at times loses its connection (libwebrtc's ICE turns disconnected) in a full run.
  test(`${CONCURRENT_CALLS} concurrent calls on a single transceiver: each caller hears its own tone, none dropped`, async (t) => {
    const edge = await Edge.start({ transceivers: 1, capacity: 60, echoDelayMs: 100 });
    const calls: Awaited<ReturnType<CallerHost['call']>>[] = [];
    try {
      for (let i = 0; i < CONCURRENT_CALLS; i++) {
        try {
          calls.push(await host.call(edge.whipUrl, { toneHz: 300 + (i % 10) * 50, timeoutMs: 30_000 }));
        } catch (error) {
          // Seen once on a machine saturated by another benchmark: keep what the edge said.
          const metrics = await edge.transceiverMetrics(0).catch(() => new Map());
          const ended = [...metrics].filter(
            ([name]) =>
              name.includes('sessions_ended_total') || name.includes('tunnel_') || name.includes('paths_'),
          );
          t.diagnostic(
            `call ${i} failed; sessions ended: ${JSON.stringify(ended)}\n${edge.output.slice(-4000)}`,
          );
          throw error;
        }
      }
      assert.equal(await sessions(edge), CONCURRENT_CALLS);
      await Promise.all(calls.map((call) => call.waitForEcho(20_000)));
      await sleep(2_000);
      const states = await Promise.all(calls.map((call) => call.connectionState()));
      assert.ok(
        states.every((state) => state === 'connected'),
        `none dropped: ${states.join(',')}`,
      );
      assert.equal(await sessions(edge), CONCURRENT_CALLS);
      const setups = calls.map((call) => call.setupMs).sort((a, b) => a - b);
      t.diagnostic(`setup p50 ${setups[setups.length >> 1]} ms, max ${setups.at(-1)} ms`);
    } finally {
      await Promise.all(calls.map((call) => call.hangUp()));
      await edge.stop();
    }
  });
});

describe('backends that misbehave', () => {
  test('barge-in: after clear, none of the queued audio reaches the caller', async () => {
    const backend = await startScriptedBackend({ toneHz: 500, toneMs: 20_000 });
    const edge = await Edge.start({ backendUrl: backend.url });
    const caller = await host.call(edge.whipUrl, { toneHz: 0 });
    try {
      await caller.waitForEcho(5_000, 500); // the backend's queued tone plays
      const before = await caller.level(Date.now() - 500);
      assert.ok(before.level > 0.05, `the queued tone plays (level ${before.level.toFixed(3)})`);
      await caller.sendMessage('clear');
      await waitUntil(async () => backend.done.has('clear'), 3_000, 'the backend to send clear');
      const cleared = backend.done.get('clear')!;
      // Allow the packets already on the wire and the caller's own jitter buffer, then silence:
      // the 20 s of tone still queued at the transceiver never reach the caller.
      await sleep(1_500);
      const after = await caller.level(cleared + 400);
      assert.ok(after.bytes > 0);
      assert.ok(after.level < 0.01, `level after clear: ${after.level.toFixed(4)}`);
    } finally {
      await caller.close();
      await edge.stop();
      await backend.close();
    }
  });

  test('the backend closing mid-call ends the session cleanly and the caller is told', async () => {
    const backend = await startScriptedBackend({ toneHz: 500, toneMs: 1_000 });
    const edge = await Edge.start({ backendUrl: backend.url });
    const caller = await host.call(edge.whipUrl, { toneHz: 0 });
    try {
      assert.equal(await sessions(edge), 1);
      await caller.sendMessage('close');
      await waitUntil(async () => (await sessions(edge)) === 0, 5_000, 'the session to end');
      await caller.waitForState(['closed', 'failed', 'disconnected'], 15_000);
      const metrics = await edge.transceiverMetrics(0);
      assert.equal(
        sample(metrics, 'voice_edge_transceiver_sessions_ended_total', { reason: 'backend-closed' }),
        1,
      );
      assert.equal(backend.connections(), 0);
    } finally {
      await caller.close();
      await edge.stop();
      await backend.close();
    }
  });

  test('an unreachable backend: the WHIP POST fails with a problem, nothing is left behind', async () => {
    const edge = await Edge.start({
      backendUrl: 'ws://127.0.0.1:9',
      transceiver: { backend: { url: 'ws://127.0.0.1:9', sampleRate: 16000, connectTimeoutMs: 500 } },
    });
    const { caller, sdp } = await host.offer();
    try {
      const response = await fetch(edge.whipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: sdp,
      });
      assert.ok(response.status >= 500, `status ${response.status}`);
      assert.equal(response.headers.get('content-type'), 'application/problem+json');
      assert.equal(await sessions(edge), 0);
      const metrics = await edge.transceiverMetrics(0);
      assert.ok(
        sample(metrics, 'voice_edge_transceiver_sessions_failed_total', { code: 'backend-unavailable' }) >= 1,
      );
    } finally {
      await caller.close();
      await edge.stop();
    }
  });
});
