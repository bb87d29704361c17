// The transceiver's internal API as a stranger meets it (issue: "the transceiver's internal API has
// no authentication"): the real transceiver process refuses drains, sessions and deletes without
// its token — including the drain a web page could send as a cross-origin "simple" POST — while
// signaling, which holds the token, places, renegotiates and ends calls as before.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Edge } from '../support/edge.ts';
import { sample } from '../support/prometheus.ts';
import { waitUntil } from '../support/wait.ts';
import { CallerHost } from '../support/wrtc-remote.ts';

const host = new CallerHost();
after(() => host.close());

/** A request exactly as a browser's form or fetch(mode: 'no-cors') would send it: any Host, Origin. */
function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('transceiver API authentication (real processes)', () => {
  let edge: Edge;
  before(async () => {
    edge = await Edge.start();
  });
  after(() => edge.stop());

  const refused = async (reason: string) =>
    sample(await edge.transceiverMetrics(0), 'voice_edge_transceiver_api_refused_total', { reason });

  test('without credentials: POST /drain, POST /sessions, DELETE /sessions/:id are 401 and change nothing', async () => {
    const api = edge.transceivers[0]!.apiUrl;
    const missingBefore = await refused('missing-token');
    const invalidBefore = await refused('invalid-token');

    // A web page on evil.example POSTing to the pod (or a DNS-rebound name): text/plain, no preflight.
    const forged = await rawRequest(
      `${api}/drain`,
      'POST',
      { host: 'evil.example', origin: 'https://evil.example', 'content-type': 'text/plain' },
      'drain',
    );
    assert.equal(forged.status, 401, forged.body);
    assert.equal(JSON.parse(forged.body).code, 'unauthorized');
    assert.equal(forged.headers['access-control-allow-origin'], undefined);
    assert.match(String(forged.headers['www-authenticate']), /^Bearer/);

    const { caller, sdp } = await host.offer();
    try {
      const created = await fetch(`${api}/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ offer: sdp, relays: ['203.0.113.66:3478'] }),
      });
      assert.equal(created.status, 401, await created.text());
      const wrong = await fetch(`${api}/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${edge.apiToken}x` },
        body: JSON.stringify({ offer: sdp }),
      });
      assert.equal(wrong.status, 401);
    } finally {
      await caller.close();
    }

    const preflight = await rawRequest(`${api}/drain`, 'OPTIONS', {
      origin: 'https://evil.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization',
    });
    assert.ok(preflight.status >= 400, `preflight answered ${preflight.status}`);
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);

    // A live call, placed through signaling; a stranger cannot end it.
    const call = await host.call(edge.whipUrl, { toneHz: 440 });
    try {
      await call.waitForEcho(5_000);
      const sessionId = decodeURIComponent(call.resourceUrl.split('/').at(-1)!.split('.').slice(1).join('.'));
      const deleted = await fetch(`${api}/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' });
      assert.equal(deleted.status, 401);
      await call.waitForEcho(3_000);

      // With the token, the transceiver is still active and the call still there.
      const status = await edge.status(0);
      assert.equal(status.state, 'active', 'the forged drain did not happen');
      assert.equal(status.sessions, 1);
      // /healthz and /metrics stay open for the kubelet and Prometheus.
      assert.equal((await fetch(`${api}/healthz`)).status, 200);

      assert.equal(await refused('missing-token'), missingBefore + 4, 'drain, sessions, preflight, delete');
      assert.equal(await refused('invalid-token'), invalidBefore + 1);

      // Signaling, holding the token, ends the call (its DELETE reaches the transceiver).
      assert.equal(await call.hangUp(), 200);
      await waitUntil(async () => (await edge.status(0)).sessions === 0, 3_000, 'the call ended');
    } finally {
      await call.close();
    }
  });
});
