// The transceiver API's gate: which requests reach a route, and what the refused ones are told.
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { bearer } from '../protocol/bearer-auth.ts';
import { guardApi } from './api-auth.ts';

const OLD = 'old-token_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const NEW = 'new-token.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';

let app: FastifyInstance;
let registry: Registry;
/** Routes reached, as `METHOD /path`. */
let reached: string[];

beforeEach(async () => {
  registry = new Registry();
  reached = [];
  app = Fastify({ logger: false });
  guardApi(app, { tokens: [NEW, OLD], registry });
  const record = (name: string) => async () => {
    reached.push(name);
    return { ok: true };
  };
  // The transceiver API's routes (api.ts), each recording that it ran.
  app.post('/sessions', record('POST /sessions'));
  app.patch('/sessions/:id', record('PATCH /sessions/:id'));
  app.delete('/sessions/:id', record('DELETE /sessions/:id'));
  app.get('/sessions/:id', record('GET /sessions/:id'));
  app.post('/drain', record('POST /drain'));
  app.get('/status', record('GET /status'));
  app.get('/healthz', record('GET /healthz'));
  app.get('/metrics', record('GET /metrics'));
  await app.ready();
});

async function refusals(): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('voice_edge_transceiver_api_refused_total')!.get();
  return Object.fromEntries(metric.values.map((value) => [String(value.labels.reason), value.value]));
}

const json = { 'content-type': 'application/json' };

describe('guardApi', () => {
  test('without a token or with a wrong one: 401 problem+json with WWW-Authenticate, no route runs, counted', async () => {
    const missing = await app.inject({ method: 'POST', url: '/drain' });
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="voice-edge-transceiver"');
    assert.equal(missing.json().code, 'unauthorized');
    for (const authorization of [`Bearer ${NEW}x`, `Bearer ${OLD.slice(0, -1)}`, `Basic ${NEW}`, NEW]) {
      const wrong = await app.inject({ method: 'GET', url: '/status', headers: { authorization } });
      assert.equal(wrong.statusCode, 401, authorization);
      assert.match(String(wrong.headers['www-authenticate']), /error="invalid_token"/);
    }
    for (const [method, url] of [
      ['POST', '/sessions'],
      ['PATCH', '/sessions/abc'],
      ['DELETE', '/sessions/abc'],
      ['GET', '/sessions/abc'],
      ['GET', '/nowhere'],
    ] as const) {
      const response = await app.inject({ method, url, headers: json, payload: '{}' });
      assert.equal(response.statusCode, 401, `${method} ${url}`);
    }
    assert.deepEqual(reached, []);
    assert.deepEqual(await refusals(), { 'missing-token': 6, 'invalid-token': 4, 'media-type': 0 });
  });

  test('each configured token is accepted: a rotation runs with both', async () => {
    for (const token of [NEW, OLD]) {
      const drained = await app.inject({ method: 'POST', url: '/drain', headers: bearer(token) });
      assert.equal(drained.statusCode, 200, drained.body);
      const created = await app.inject({
        method: 'POST',
        url: '/sessions',
        headers: { ...bearer(token), ...json },
        payload: '{"offer":"v=0"}',
      });
      assert.equal(created.statusCode, 200, created.body);
      const deleted = await app.inject({ method: 'DELETE', url: '/sessions/abc', headers: bearer(token) });
      assert.equal(deleted.statusCode, 200, deleted.body);
    }
    assert.deepEqual(reached, [
      'POST /drain',
      'POST /sessions',
      'DELETE /sessions/:id',
      'POST /drain',
      'POST /sessions',
      'DELETE /sessions/:id',
    ]);
    assert.deepEqual(await refusals(), { 'missing-token': 0, 'invalid-token': 0, 'media-type': 0 });
  });

  test('/healthz and /metrics are open to GET and HEAD only', async () => {
    for (const url of ['/healthz', '/metrics']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url);
      assert.equal((await app.inject({ method: 'HEAD', url })).statusCode, 200, url);
      assert.equal((await app.inject({ method: 'POST', url })).statusCode, 401, url);
    }
  });

  test('a cross-origin "simple" POST /drain (text/plain, foreign Origin and Host) is refused', async () => {
    const forged = await app.inject({
      method: 'POST',
      url: '/drain',
      headers: { origin: 'https://evil.example', host: 'evil.example', 'content-type': 'text/plain' },
      payload: '{"state":"draining"}',
    });
    assert.equal(forged.statusCode, 401);
    assert.equal(forged.headers['access-control-allow-origin'], undefined);
    assert.deepEqual(reached, []);
  });

  test('no CORS preflight is answered, even with a token', async () => {
    for (const headers of [{}, bearer(NEW)]) {
      const preflight = await app.inject({
        method: 'OPTIONS',
        url: '/drain',
        headers: {
          ...headers,
          origin: 'https://evil.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });
      assert.ok(preflight.statusCode >= 400, String(preflight.statusCode));
      for (const name of Object.keys(preflight.headers)) assert.doesNotMatch(name, /^access-control-/);
    }
  });

  test('with a token, a state change with a body that is not JSON is 415 and does not run', async () => {
    const cases = [
      { method: 'POST', url: '/drain', type: 'text/plain', payload: 'x' },
      { method: 'POST', url: '/drain', type: 'application/x-www-form-urlencoded', payload: 'a=b' },
      { method: 'POST', url: '/sessions', type: 'text/plain', payload: '{"offer":"v=0"}' },
      { method: 'POST', url: '/sessions', type: undefined, payload: undefined },
      { method: 'PATCH', url: '/sessions/abc', type: 'multipart/form-data; boundary=x', payload: '--x--' },
      { method: 'DELETE', url: '/sessions/abc', type: 'text/plain', payload: 'x' },
    ] as const;
    for (const { method, url, type, payload } of cases) {
      const response = await app.inject({
        method,
        url,
        headers: { ...bearer(NEW), ...(type === undefined ? {} : { 'content-type': type }) },
        ...(payload === undefined ? {} : { payload }),
      });
      assert.equal(response.statusCode, 415, `${method} ${url} ${type}`);
      assert.equal(response.json().code, 'unsupported-media-type');
    }
    assert.deepEqual(reached, []);
    assert.equal((await refusals())['media-type'], cases.length);
    // JSON with parameters is JSON; a bodiless POST /drain needs no type.
    const ok = await app.inject({
      method: 'PATCH',
      url: '/sessions/abc',
      headers: { ...bearer(NEW), 'content-type': 'Application/JSON; charset=utf-8' },
      payload: '{"offer":"v=0"}',
    });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('no token configured is a programming error, not "authentication off"', () => {
    assert.throws(() => guardApi(Fastify(), { tokens: [], registry: new Registry() }), /at least one token/);
  });
});
