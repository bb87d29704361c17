// Call lifecycle through the whole edge: the session cap, the connect timeout, the media timeout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Edge } from '../support/edge.ts';
import { sample } from '../support/prometheus.ts';
import { waitUntil } from '../support/wait.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

const host = new CallerHost();
after(() => host.close());

describe('call lifecycle', () => {
  let edge: Edge;
  before(async () => {
    edge = await Edge.start({
      capacity: 1,
      transceiver: {
        sessions: { max: 1, connectTimeoutMs: 1_000, mediaTimeoutMs: 1_500, qualityIntervalMs: 500 },
      },
    });
  });
  after(() => edge.stop());

  /** The one slot is free again, and signaling's status cache (polled every 300 ms) knows it. */
  const slotFree = async () => {
    await waitUntil(async () => (await edge.status()).sessions === 0, 5_000, 'a free slot');
    await sleep(700);
  };

  const ended = async (reason: string) =>
    sample(await edge.transceiverMetrics(0), 'voice_edge_transceiver_sessions_ended_total', { reason });

  test('a full transceiver: the next WHIP offer gets 503 with Retry-After', async () => {
    const caller = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      await caller.waitForEcho(5_000);
      const { caller: second, sdp } = await host.offer();
      const response = await fetch(edge.whipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: sdp,
      });
      assert.equal(response.status, 503);
      assert.ok(Number(response.headers.get('retry-after')) > 0);
      assert.equal(response.headers.get('content-type'), 'application/problem+json');
      assert.equal(((await response.json()) as { code: string }).code, 'no-capacity');
      await second.close();
    } finally {
      await caller.hangUp();
    }
  });

  test('a caller that never connects is dropped after the connect timeout', async () => {
    await slotFree();
    const before = await ended('connect-timeout');
    const { caller, sdp } = await host.offer();
    try {
      const response = await fetch(edge.whipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: sdp,
      });
      assert.equal(response.status, 201);
      assert.equal((await edge.status()).sessions, 1);
      // The answer is never applied: no check ever reaches the transceiver.
      await waitUntil(async () => (await edge.status()).sessions === 0, 4_000, 'the connect timeout');
      assert.equal(await ended('connect-timeout'), before + 1);
    } finally {
      await caller.close();
    }
  });

  test("a call's RTCP figures reach the metrics: RTT from the caller's reports, jitter and loss of its audio", async () => {
    await slotFree();
    const count = async (name: string) => sample(await edge.transceiverMetrics(0), `${name}_count`);
    const sum = async (name: string) => sample(await edge.transceiverMetrics(0), `${name}_sum`);
    const rtt = 'voice_edge_transceiver_rtt_seconds';
    const jitter = 'voice_edge_transceiver_jitter_seconds';
    const loss = 'voice_edge_transceiver_loss_ratio';
    const before = { rtt: await count(rtt), jitter: await count(jitter), loss: await count(loss) };
    const caller = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      await caller.waitForEcho(5_000);
      // libwebrtc reports on the transceiver's sender reports every few seconds: an RTT needs one.
      await waitUntil(async () => (await count(rtt)) > before.rtt, 15_000, 'an RTT from RTCP');
      assert.ok((await count(jitter)) > before.jitter, 'jitter sampled');
      assert.ok((await count(loss)) > before.loss, 'loss sampled');
      const rttSum = await sum(rtt);
      assert.ok(rttSum >= 0 && rttSum < 1, `loopback RTTs, ${rttSum} s in all`);
      assert.equal(await sum(loss), 0, 'nothing lost on loopback');
    } finally {
      await caller.hangUp();
    }
  });

  test('a caller that goes silent (no STUN, no media) is dropped after the media timeout', async () => {
    await slotFree();
    const before = await ended('media-timeout');
    const caller = await host.call(edge.whipUrl, { toneHz: 440 });
    await caller.waitForEcho(5_000);
    await caller.close(); // gone without a DELETE, as a crashed tab would be
    await waitUntil(async () => (await edge.status()).sessions === 0, 5_000, 'the media timeout');
    assert.equal(await ended('media-timeout'), before + 1);
  });
});
