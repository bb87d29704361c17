// werift callers over a path that loses 10 % of the datagrams each way (test/support/udp-proxy.ts,
// seeded): every call must set up (ICE, DTLS, SRTP) and get its audio. werift is the DTLS server of
// these calls and the transceiver's werift their client; before patches 004 and 005
// (docs/transceiver.md#werift-what-the-adapter-relies-on) a lost handshake record could leave a call
// connected at one end only, or not at all.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newCallerPeerConnection } from '../../cli/caller-peer.ts';
import { Edge } from '../support/edge.ts';
import { type ScriptedBackend, startScriptedBackend } from '../support/scripted-backend.ts';
import { UdpProxy } from '../support/udp-proxy.ts';
import { waitUntil } from '../support/wait.ts';

const CALLS = 12;
const LOSS = 0.1;

describe('werift callers over a lossy path', { timeout: 240_000 }, () => {
  let backend: ScriptedBackend;
  let edge: Edge;
  let proxy: UdpProxy;

  before(async () => {
    backend = await startScriptedBackend({ toneHz: 440, toneMs: 60_000 });
    edge = await Edge.start({ backendUrl: backend.url });
    proxy = await UdpProxy.start({ address: '127.0.0.1', port: edge.relayPort }, { loss: LOSS, seed: 12 });
  });

  after(async () => {
    proxy?.close();
    await edge?.stop();
    await backend?.close();
  });

  test(`${CALLS} of ${CALLS} calls set up and hear audio with ${LOSS * 100} % loss each way`, async (t) => {
    const setups: number[] = [];
    const failures: string[] = [];
    for (let index = 0; index < CALLS; index++) {
      const pc = newCallerPeerConnection();
      try {
        pc.addTransceiver('audio', { direction: 'sendrecv' });
        await pc.setLocalDescription(await pc.createOffer());
        while (pc.iceGatheringState !== 'complete') await sleep(20);
        const started = Date.now();
        // Signaling is reached directly: only the media path is lossy.
        const response = await fetch(edge.whipUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp' },
          body: pc.localDescription!.sdp,
        });
        assert.equal(response.status, 201);
        const answer = await response.text();
        const known = new Set(proxy.clients.keys());
        await pc.setRemoteDescription({
          type: 'answer',
          sdp: answer.replaceAll(` ${edge.relayPort} typ host`, ` ${proxy.port} typ host`),
        });
        // Audio at the caller's side of the path: ICE, DTLS and SRTP all done at both ends.
        const heard = async () =>
          [...proxy.clients.entries()].some(
            ([key, client]) => !known.has(key) && client.received.length >= 25,
          );
        try {
          await waitUntil(heard, 20_000, `call ${index + 1}: audio`);
          setups.push(Date.now() - started);
        } catch {
          failures.push(`call ${index + 1}: ${pc.connectionState}`);
        }
        await fetch(new URL(response.headers.get('location')!, edge.whipUrl), { method: 'DELETE' });
      } finally {
        await pc.close();
      }
    }
    setups.sort((a, b) => a - b);
    t.diagnostic(
      `${setups.length} of ${CALLS} set up; offer → audio median ${setups[Math.floor(setups.length / 2)]} ms, ` +
        `max ${setups.at(-1)} ms; ${proxy.dropped} datagrams lost on the path`,
    );
    assert.deepEqual(failures, []);
    assert.ok(proxy.dropped > 0, 'the path lost datagrams');
    await waitUntil(async () => (await edge.status(0)).sessions === 0, 10_000, 'every session to end');
  });
});
