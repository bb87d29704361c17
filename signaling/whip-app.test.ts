// WHIP semantics of the public server, with real transceiver-API servers on loopback (the contract
// double in test-support/, until test/e2e runs against the real transceiver).
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import type { RoutingTable, TransceiverEntry } from '../protocol/routing-table.ts';
import { CHROME_AUDIO_OFFER, withoutLines } from '../protocol/testdata/offers.ts';
import { freeTcpPort } from '../test/support/net.ts';
import { SignalingConfigSchema } from './config.ts';
import { createSignalingMetrics, type SignalingMetrics } from './metrics.ts';
import { StatusCache } from './status-cache.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';
import { TransceiverClient } from './transceiver-client.ts';
import { buildWhipApp, DEMO_CSP } from './whip-app.ts';

const CLUSTER = 3;
const API_TOKEN = 'transceiver-api-token';
const TRICKLE = [
  'a=group:BUNDLE 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'a=mid:0',
  'a=ice-ufrag:Xl7c',
  'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
  'a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0',
  'a=end-of-candidates',
  '',
].join('\r\n');

interface Setup {
  readonly app: FastifyInstance;
  readonly cache: StatusCache;
  readonly metrics: SignalingMetrics;
  table: RoutingTable;
}

let doubles: TransceiverDouble[];
let closedPort: number;
let current: Setup | undefined;

before(async () => {
  doubles = await Promise.all(
    // The doubles take the API token as the real transceiver does: every call below must carry it.
    [1, 2, 3].map((id) =>
      TransceiverDouble.start({ id, clusterId: CLUSTER, capacity: 10, token: API_TOKEN }),
    ),
  );
  closedPort = await freeTcpPort();
});
after(async () => {
  await Promise.all(doubles.map((double) => double.close()));
});
beforeEach(() => {
  for (const double of doubles) double.reset(10);
});
afterEach(async () => {
  current?.cache.close();
  await current?.app.close();
  current = undefined;
});

const double = (id: number) => doubles[id - 1]!;
const entryFor = (id: number, extra: Partial<TransceiverEntry> = {}): TransceiverEntry => ({
  id,
  tunnel: { family: 4, address: '10.0.0.1', port: 4000 + id },
  state: 'active',
  api: 'api' in extra ? extra.api : double(id).api,
  ...extra,
});

async function setup(
  entries: TransceiverEntry[],
  config: Record<string, unknown> = {},
  random: () => number = () => 0,
): Promise<Setup> {
  const parsed = SignalingConfigSchema.parse({
    routingTable: { file: 'unused' },
    transceivers: { apiTokens: [API_TOKEN] },
    ...config,
  });
  const client = new TransceiverClient({
    requestTimeoutMs: 1_000,
    statusTimeoutMs: 300,
    token: parsed.transceivers.apiTokens[0],
  });
  const cache = new StatusCache({ client, intervalMs: 60_000, staleMs: 120_000 });
  const metrics = createSignalingMetrics(() => cache.availability());
  const state: Setup = {
    cache,
    metrics,
    table: {
      clusterId: CLUSTER,
      generation: 1,
      peers: [],
      edgeRelays: [],
      relaySources: [],
      transceivers: entries,
    },
    app: undefined as unknown as FastifyInstance,
  };
  await cache.setTable(state.table);
  const app = buildWhipApp({
    config: parsed,
    routingTable: () => state.table,
    statuses: cache,
    client,
    metrics,
    logger: pino({ level: 'silent' }),
    random,
  });
  await app.ready();
  Object.assign(state, { app });
  current = state;
  return state;
}

function post(app: FastifyInstance, body = CHROME_AUDIO_OFFER, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: '/whip',
    headers: { 'content-type': 'application/sdp', ...headers },
    payload: body,
  });
}

function assertProblem(
  response: LightMyRequestResponse,
  status: number,
  code: string,
  detail?: RegExp,
): void {
  assert.equal(response.statusCode, status, response.body);
  assert.equal(response.headers['content-type'], 'application/problem+json');
  const body = response.json();
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.type, `urn:voice-edge:problem:${code}`);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  if (detail) assert.match(body.detail, detail);
}

/** `/whip/sessions/<id>.<sessionId>` → its parts. */
function parseLocation(location: unknown): { transceiverId: number; sessionId: string } {
  assert.equal(typeof location, 'string');
  const match = /^\/whip\/sessions\/(\d+)\.(.+)$/.exec(location as string);
  assert.ok(match, `Location ${String(location)} has the documented shape`);
  return { transceiverId: Number(match[1]), sessionId: decodeURIComponent(match[2]!) };
}

describe('POST /whip', () => {
  test('201 with the answer, a Location naming the transceiver, an ETag; the offer reaches it', async () => {
    const { app } = await setup([entryFor(1)], { relays: ['203.0.113.7:3478', '[2001:db8::7]:3478'] });
    const response = await post(app, CHROME_AUDIO_OFFER, { 'user-agent': 'test-agent/1' });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.headers['content-type'], 'application/sdp');
    const { transceiverId, sessionId } = parseLocation(response.headers.location);
    assert.equal(transceiverId, 1);
    const session = double(1).sessions.get(sessionId);
    assert.ok(session, 'the session exists on transceiver 1');
    assert.equal(response.headers.etag, `"${session.ufrag}"`);
    assert.match(response.body, /^v=0\r\n/);
    assert.match(response.body, /a=candidate:1 1 udp 2130706431 203\.0\.113\.7 3478 typ host/);
    assert.equal(response.headers['accept-patch'], 'application/trickle-ice-sdpfrag, application/sdp');
    assert.equal(session.offer, CHROME_AUDIO_OFFER);
    assert.deepEqual(session.relays, ['203.0.113.7:3478', '[2001:db8::7]:3478']);
    assert.equal(session.metadata?.userAgent, 'test-agent/1');
    assert.match(String(session.metadata?.requestId), /^[0-9a-f-]{36}$/);
  });

  test('no relays configured: the field is left out (the transceiver uses its defaults)', async () => {
    const { app } = await setup([entryFor(1)]);
    assert.equal((await post(app)).statusCode, 201);
    const create = double(1).requests.find((request) => request.url === '/sessions');
    assert.equal(Object.hasOwn(create?.body as object, 'relays'), false);
  });

  test('415 for anything but application/sdp, with Accept-Post', async () => {
    const { app } = await setup([entryFor(1)]);
    for (const contentType of ['text/plain', 'application/json', 'application/trickle-ice-sdpfrag']) {
      const response = await post(app, CHROME_AUDIO_OFFER, { 'content-type': contentType });
      assertProblem(response, 415, 'unsupported-media-type', /expected Content-Type: application\/sdp/);
      assert.equal(response.headers['accept-post'], 'application/sdp');
    }
    const none = await app.inject({ method: 'POST', url: '/whip' });
    assertProblem(none, 415, 'unsupported-media-type', /none was sent/);
    const noTypeWithBody = await app.inject({ method: 'POST', url: '/whip', payload: CHROME_AUDIO_OFFER });
    assert.equal(noTypeWithBody.statusCode, 415);
    assert.equal(double(1).sessions.size, 0);
  });

  test('media type parameters and case are tolerated', async () => {
    const { app } = await setup([entryFor(1)]);
    assert.equal(
      (await post(app, CHROME_AUDIO_OFFER, { 'content-type': 'application/sdp; charset=utf-8' })).statusCode,
      201,
    );
    assert.equal(
      (await post(app, CHROME_AUDIO_OFFER, { 'content-type': 'Application/SDP' })).statusCode,
      201,
    );
  });

  test('400 bad-sdp naming the missing piece; the transceiver is never asked', async () => {
    const { app } = await setup([entryFor(1)]);
    assertProblem(
      await post(
        app,
        withoutLines(CHROME_AUDIO_OFFER, (line) => line === 'a=rtcp-mux'),
      ),
      400,
      'bad-sdp',
      /no a=rtcp-mux/,
    );
    assertProblem(await post(app, 'hello'), 400, 'bad-sdp', /line 1/);
    assertProblem(await post(app, ''), 400, 'bad-sdp', /empty/);
    assert.equal(double(1).requests.filter((request) => request.url === '/sessions').length, 0);
  });

  test('413 too-large for a body over limits.maxOfferBytes', async () => {
    const { app } = await setup([entryFor(1)], { limits: { maxOfferBytes: 2048 } });
    const response = await post(app, `${CHROME_AUDIO_OFFER}a=x:${'y'.repeat(3000)}\r\n`);
    assertProblem(response, 413, 'too-large', /2048 bytes/);
    assert.equal(response.headers['access-control-allow-origin'], '*');
  });

  test('least loaded transceiver gets the session', async () => {
    double(1).extraSessions = 5;
    double(2).extraSessions = 1;
    double(3).extraSessions = 3;
    const { app, metrics } = await setup([entryFor(1), entryFor(2), entryFor(3)]);
    const first = await post(app);
    assert.equal(parseLocation(first.headers.location).transceiverId, 2);
    // Placed sessions count at once, before the next poll: 2 now has 2, then 3 ties with 3 …
    const placed: number[] = [];
    for (let index = 0; index < 4; index++)
      placed.push(parseLocation((await post(app)).headers.location).transceiverId);
    assert.deepEqual(placed, [2, 2, 3, 2]);
    const text = await metrics.registry.metrics();
    assert.match(text, /voice_edge_signaling_sessions_placed_total\{transceiver="2"\} 4/);
    assert.match(text, /voice_edge_signaling_sessions_placed_total\{transceiver="3"\} 1/);
    assert.match(text, /voice_edge_signaling_offer_to_answer_seconds_count 5/);
  });

  test('draining (table or status), full and unreachable transceivers get nothing', async () => {
    double(2).state = 'draining';
    double(3).extraSessions = 10;
    const { app } = await setup([
      entryFor(1, { state: 'draining' }),
      entryFor(2),
      entryFor(3),
      entryFor(4, { api: `http://127.0.0.1:${closedPort}` }),
    ]);
    const response = await post(app);
    assertProblem(response, 503, 'no-capacity', /4 transceivers: 2 draining, 1 full, 1 unreachable/);
    assert.equal(response.headers['retry-after'], '5');
    for (const id of [1, 2, 3]) {
      assert.equal(double(id).requests.filter((request) => request.url === '/sessions').length, 0);
    }
  });

  test('503 no-capacity with Retry-After when the table is empty; counted', async () => {
    const { app, metrics } = await setup([], { placement: { retryAfterSeconds: 9 } });
    const response = await post(app);
    assertProblem(response, 503, 'no-capacity', /routing table lists no transceiver/);
    assert.equal(response.headers['retry-after'], '9');
    assert.match(await metrics.registry.metrics(), /voice_edge_signaling_no_capacity_total 1/);
  });

  test('a 503 from the chosen transceiver falls through to the next; the cache learns', async () => {
    double(2).extraSessions = 5; // 1 is first choice
    const { app, cache } = await setup([entryFor(1), entryFor(2)]);
    double(1).failNextCreate(503, 'at-capacity');
    const response = await post(app);
    assert.equal(response.statusCode, 201);
    assert.equal(parseLocation(response.headers.location).transceiverId, 2);
    assert.deepEqual(cache.view(1), { reachable: true, state: 'active', sessions: 10, capacity: 10 });

    double(2).failNextCreate(503, 'draining');
    assertProblem(await post(app), 503, 'no-capacity', /1 tried/);
    assert.equal((cache.view(2) as { state: string }).state, 'draining');
  });

  test('an unreachable transceiver is skipped and marked; the next one answers', async () => {
    const doomed = await TransceiverDouble.start({ id: 4, clusterId: CLUSTER, capacity: 10 });
    double(2).extraSessions = 5; // 4 is first choice
    const { app, cache } = await setup([entryFor(4, { api: doomed.api }), entryFor(2)]);
    assert.equal(cache.view(4)?.reachable, true);
    await doomed.close(); // gone between two polls
    const response = await post(app);
    assert.equal(response.statusCode, 201);
    assert.equal(parseLocation(response.headers.location).transceiverId, 2);
    const view = cache.view(4);
    assert.ok(view && !view.reachable);
    assert.match(view.reason, /ECONNREFUSED/);
  });

  test('bounded attempts: placement.maxAttempts transceivers at most', async () => {
    const { app } = await setup([entryFor(1), entryFor(2), entryFor(3)], { placement: { maxAttempts: 2 } });
    for (const id of [1, 2, 3]) double(id).failNextCreate(503, 'at-capacity');
    assertProblem(await post(app), 503, 'no-capacity', /2 tried/);
    const asked = [1, 2, 3].map(
      (id) => double(id).requests.filter((request) => request.url === '/sessions').length,
    );
    assert.deepEqual(asked.sort(), [0, 1, 1]);
  });

  test('bad-sdp from the transceiver passes through with its detail', async () => {
    const { app } = await setup([entryFor(1), entryFor(2)]);
    double(1).failNextCreate(400, 'bad-sdp', 'werift: no common codec');
    double(2).failNextCreate(400, 'bad-sdp', 'werift: no common codec');
    assertProblem(await post(app), 400, 'bad-sdp', /^werift: no common codec$/);
  });

  test('other transceiver errors are 502 transceiver-error, without internal details', async () => {
    const { app, metrics } = await setup([entryFor(1)]);
    double(1).failNextCreate(502, 'backend-unavailable', 'ws://10.1.2.3:9000 refused');
    const response = await post(app);
    assertProblem(response, 502, 'transceiver-error', /\(backend-unavailable\)/);
    assert.doesNotMatch(response.body, /10\.1\.2\.3/);
    double(1).failNextCreate(500, 'negotiation-failed');
    assertProblem(await post(app), 502, 'transceiver-error', /negotiation-failed/);
    double(1).failNextCreate(400, 'bad-request');
    assertProblem(await post(app), 502, 'transceiver-error', /bad-request/);
    assert.match(
      await metrics.registry.metrics(),
      /voice_edge_signaling_transceiver_errors_total\{operation="create",outcome="502"\} 1/,
    );
  });
});

describe('DELETE /whip/sessions/:id', () => {
  test('routes to the transceiver the id names, answers 200', async () => {
    double(1).extraSessions = 5;
    const { app } = await setup([entryFor(1), entryFor(2)]);
    const created = await post(app);
    assert.equal(created.statusCode, 201, created.body);
    const { transceiverId, sessionId } = parseLocation(created.headers.location);
    assert.equal(transceiverId, 2);
    const response = await app.inject({ method: 'DELETE', url: created.headers.location as string });
    assert.equal(response.statusCode, 200);
    assert.equal(response.body, '');
    assert.equal(double(2).sessions.has(sessionId), false);
    assert.equal(double(1).requests.filter((request) => request.method === 'DELETE').length, 0);
    // Again: the transceiver no longer knows it.
    assertProblem(
      await app.inject({ method: 'DELETE', url: created.headers.location as string }),
      404,
      'not-found',
    );
  });

  test('session IDs that need percent-encoding survive the round trip', async () => {
    const { app } = await setup([entryFor(1)]);
    double(1).sessions.set('a/b c', {
      sessionId: 'a/b c',
      offer: '',
      relays: undefined,
      tcpRelays: undefined,
      metadata: undefined,
      ufrag: 'u',
    });
    const response = await app.inject({ method: 'DELETE', url: '/whip/sessions/1.a%2Fb%20c' });
    assert.equal(response.statusCode, 200);
    assert.equal(double(1).sessions.size, 0);
  });

  test('404 for malformed ids, unknown transceivers and transceivers without an API', async () => {
    const { app } = await setup([entryFor(1), entryFor(5, { api: undefined })]);
    for (const id of ['abc', '1', '1.', '.abc', '01.abc', '99999999999.abc', '2.abc', '5.abc', '-1.abc']) {
      assertProblem(
        await app.inject({ method: 'DELETE', url: `/whip/sessions/${id}` }),
        404,
        'not-found',
        /no such session/,
      );
    }
    assert.equal(double(1).requests.filter((request) => request.method === 'DELETE').length, 0);
    assertProblem(await app.inject({ method: 'DELETE', url: '/whip/sessions/' }), 404, 'not-found');
  });

  test('an unreachable transceiver is 502', async () => {
    const { app } = await setup([entryFor(1, { api: `http://127.0.0.1:${closedPort}` })]);
    assertProblem(
      await app.inject({ method: 'DELETE', url: '/whip/sessions/1.abc' }),
      502,
      'transceiver-error',
    );
  });
});

describe('PATCH /whip/sessions/:id', () => {
  async function placed(app: FastifyInstance) {
    const created = await post(app);
    assert.equal(created.statusCode, 201);
    return { location: created.headers.location as string, etag: created.headers.etag as string };
  }

  test('trickled candidates: 204, no ETag, nothing forwarded (the transceiver is only asked the session exists)', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location, etag } = await placed(app);
    const before = double(1).requests.length;
    const response = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': etag },
      payload: TRICKLE,
    });
    assert.equal(response.statusCode, 204);
    assert.equal(response.headers.etag, undefined);
    assert.deepEqual(
      double(1)
        .requests.slice(before)
        .map((request) => request.method),
      ['GET'],
    );
    // Without If-Match too (lenient: nothing is applied).
    const bare = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      payload: TRICKLE,
    });
    assert.equal(bare.statusCode, 204);
  });

  test('trickled candidates for a session that does not exist: 404 problem', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location } = await placed(app);
    const gone = location.replace(/\.[^.]+$/, '.no-such-session');
    const response = await app.inject({
      method: 'PATCH',
      url: gone,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      payload: TRICKLE,
    });
    assert.equal(response.statusCode, 404);
    assert.equal(response.headers['content-type'], 'application/problem+json');
    assert.equal(response.json().code, 'not-found');
  });

  test('ICE restart by sdpfrag (If-Match: *) is 422 ice-restart-unsupported', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location } = await placed(app);
    const response = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*' },
      payload: TRICKLE.replace('Xl7c', 'Yy8d'),
    });
    assertProblem(response, 422, 'ice-restart-unsupported', /PATCH a full re-offer as application\/sdp/);
    const quoted = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '"*"' },
      payload: TRICKLE.replace('Xl7c', 'Yy8d'),
    });
    assertProblem(quoted, 422, 'ice-restart-unsupported');
  });

  test('a malformed fragment is 400 bad-sdp', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location } = await placed(app);
    const response = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
      payload: 'v=0\r\n',
    });
    assertProblem(response, 400, 'bad-sdp', /only a= and m= lines/);
  });

  test('a full re-offer as application/sdp is forwarded: 200 with the answer and a new ETag', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location, etag } = await placed(app);
    const { sessionId } = parseLocation(location);
    const reoffer = CHROME_AUDIO_OFFER.replace('a=ice-ufrag:Xl7c', 'a=ice-ufrag:Zz9e');
    const response = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/sdp', 'if-match': etag },
      payload: reoffer,
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.headers['content-type'], 'application/sdp');
    const session = double(1).sessions.get(sessionId)!;
    assert.equal(session.offer, reoffer);
    assert.equal(response.headers.etag, `"${session.ufrag}"`);
    assert.notEqual(response.headers.etag, etag);
    assert.match(response.body, new RegExp(`a=ice-ufrag:${session.ufrag}`));
  });

  test('re-offer errors: bad SDP 400, unknown session 404, other content types 415', async () => {
    const { app } = await setup([entryFor(1)]);
    const { location } = await placed(app);
    assertProblem(
      await app.inject({
        method: 'PATCH',
        url: location,
        headers: { 'content-type': 'application/sdp' },
        payload: 'v=0\r\n',
      }),
      400,
      'bad-sdp',
    );
    assertProblem(
      await app.inject({
        method: 'PATCH',
        url: '/whip/sessions/1.nosuchsession',
        headers: { 'content-type': 'application/sdp' },
        payload: CHROME_AUDIO_OFFER,
      }),
      404,
      'not-found',
    );
    const wrongType = await app.inject({
      method: 'PATCH',
      url: location,
      headers: { 'content-type': 'application/json' },
      payload: '{}',
    });
    assertProblem(wrongType, 415, 'unsupported-media-type');
    assert.equal(wrongType.headers['accept-patch'], 'application/trickle-ice-sdpfrag, application/sdp');
    assertProblem(
      await app.inject({
        method: 'PATCH',
        url: '/whip/sessions/nope',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        payload: TRICKLE,
      }),
      404,
      'not-found',
    );
  });
});

describe('authentication', () => {
  test('missing or wrong token: 401 with WWW-Authenticate; nothing reaches a transceiver', async () => {
    const { app } = await setup([entryFor(1)], { auth: { tokens: ['s3cret-token', 'other-token'] } });
    const missing = await post(app);
    assertProblem(missing, 401, 'unauthorized', /Authorization: Bearer/);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="whip"');
    assert.equal(missing.headers['access-control-allow-origin'], '*');
    const wrong = await post(app, CHROME_AUDIO_OFFER, { authorization: 'Bearer s3cret-tokeN' });
    assertProblem(wrong, 401, 'unauthorized', /not valid/);
    assert.equal(wrong.headers['www-authenticate'], 'Bearer realm="whip", error="invalid_token"');
    // 401 comes before 415: an unauthenticated caller learns nothing else.
    assertProblem(await post(app, 'x', { 'content-type': 'text/plain' }), 401, 'unauthorized');
    assertProblem(await app.inject({ method: 'DELETE', url: '/whip/sessions/1.abc' }), 401, 'unauthorized');
    assertProblem(
      await app.inject({
        method: 'PATCH',
        url: '/whip/sessions/1.abc',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        payload: TRICKLE,
      }),
      401,
      'unauthorized',
    );
    assert.equal(double(1).requests.filter((request) => request.url !== '/status').length, 0);
  });

  test('a configured token is accepted on every WHIP route', async () => {
    const { app } = await setup([entryFor(1)], { auth: { tokens: ['s3cret-token', 'other-token'] } });
    const authorization = 'Bearer other-token';
    const created = await post(app, CHROME_AUDIO_OFFER, { authorization });
    assert.equal(created.statusCode, 201);
    const patched = await app.inject({
      method: 'PATCH',
      url: created.headers.location as string,
      headers: { authorization, 'content-type': 'application/trickle-ice-sdpfrag' },
      payload: TRICKLE,
    });
    assert.equal(patched.statusCode, 204);
    const deleted = await app.inject({
      method: 'DELETE',
      url: created.headers.location as string,
      headers: { authorization },
    });
    assert.equal(deleted.statusCode, 200);
  });

  test('no tokens configured: no authentication', async () => {
    const { app } = await setup([entryFor(1)]);
    assert.equal((await post(app, CHROME_AUDIO_OFFER, { authorization: 'Bearer anything' })).statusCode, 201);
  });
});

describe('CORS', () => {
  test('preflight on both paths, without a token', async () => {
    const { app } = await setup([entryFor(1)], { auth: { tokens: ['t0ken'] } });
    const endpoint = await app.inject({
      method: 'OPTIONS',
      url: '/whip',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(endpoint.statusCode, 204);
    assert.equal(endpoint.headers['access-control-allow-origin'], '*');
    assert.equal(endpoint.headers['access-control-allow-methods'], 'POST, OPTIONS');
    assert.equal(endpoint.headers['access-control-allow-headers'], 'Authorization, Content-Type, If-Match');
    assert.equal(endpoint.headers['access-control-expose-headers'], 'Location, ETag, Link, Retry-After');
    assert.equal(endpoint.headers['accept-post'], 'application/sdp');
    assert.equal(endpoint.headers['access-control-max-age'], '600');
    const session = await app.inject({ method: 'OPTIONS', url: '/whip/sessions/1.abc' });
    assert.equal(session.statusCode, 204);
    assert.equal(session.headers['access-control-allow-methods'], 'PATCH, DELETE, OPTIONS');
    assert.equal(session.headers['accept-patch'], 'application/trickle-ice-sdpfrag, application/sdp');
  });

  test('an origin list: matching origins are echoed with Vary, others get no Allow-Origin', async () => {
    const { app } = await setup([entryFor(1)], {
      cors: { allowOrigins: ['https://app.example.com', 'http://localhost:5173'] },
    });
    const allowed = await post(app, CHROME_AUDIO_OFFER, { origin: 'http://localhost:5173' });
    assert.equal(allowed.statusCode, 201);
    assert.equal(allowed.headers['access-control-allow-origin'], 'http://localhost:5173');
    assert.equal(allowed.headers.vary, 'Origin');
    assert.equal(allowed.headers['access-control-expose-headers'], 'Location, ETag, Link, Retry-After');
    const other = await app.inject({
      method: 'OPTIONS',
      url: '/whip',
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal(other.headers.vary, 'Origin');
  });

  test('CORS headers on errors and unknown paths too', async () => {
    const { app } = await setup([]);
    for (const response of [
      await post(app),
      await app.inject({ method: 'GET', url: '/nothing-here' }),
      await post(app, 'x', { 'content-type': 'text/plain' }),
    ]) {
      assert.equal(response.headers['access-control-allow-origin'], '*');
      assert.equal(response.headers['access-control-expose-headers'], 'Location, ETag, Link, Retry-After');
    }
  });
});

describe('other methods and paths', () => {
  test('405 with Allow for methods a WHIP resource does not take; 404 problem elsewhere', async () => {
    const { app, metrics } = await setup([entryFor(1)]);
    const get = await app.inject({ method: 'GET', url: '/whip' });
    assertProblem(get, 405, 'method-not-allowed');
    assert.equal(get.headers.allow, 'POST, OPTIONS');
    const put = await app.inject({ method: 'PUT', url: '/whip/sessions/1.a' });
    assertProblem(put, 405, 'method-not-allowed');
    assert.equal(put.headers.allow, 'PATCH, DELETE, OPTIONS');
    assertProblem(await app.inject({ method: 'GET', url: '/nowhere' }), 404, 'not-found');
    const text = await metrics.registry.metrics();
    assert.match(text, /voice_edge_signaling_requests_total\{route="\/whip",method="GET",status="405"\} 1/);
    assert.match(
      text,
      /voice_edge_signaling_requests_total\{route="unmatched",method="GET",status="404"\} 1/,
    );
  });
});

describe('demo page', () => {
  test('GET / and its two assets: content types, CSP and no inline script or style', async () => {
    const { app } = await setup([entryFor(1)]);
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    assert.equal(csp, DEMO_CSP);
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
    ])
      assert.ok(csp.includes(directive), directive);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['cache-control'], 'no-cache');
    // Relative references only (the page works behind a path prefix), nothing from elsewhere, and
    // nothing inline that the CSP would block.
    assert.match(page.body, /<script type="module" src="demo\/demo\.js"><\/script>/);
    assert.match(page.body, /<link rel="stylesheet" href="demo\/demo\.css" \/>/);
    assert.doesNotMatch(page.body, /(src|href)="(https?:|\/\/)/);
    assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i);

    const script = await app.inject({ method: 'GET', url: '/demo/demo.js' });
    assert.equal(script.statusCode, 200);
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(script.body, /window\.voiceEdgeDemo = demo/);
    assert.match(script.body, /new URL\('whip', document\.baseURI\)/);
    const style = await app.inject({ method: 'GET', url: '/demo/demo.css' });
    assert.equal(style.statusCode, 200);
    assert.equal(style.headers['content-type'], 'text/css; charset=utf-8');
    const head = await app.inject({ method: 'HEAD', url: '/demo/demo.js' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');

    for (const url of [
      '/demo/',
      '/demo/index.html',
      '/demo/../whip-app.ts',
      '/demo/%2e%2e/config.ts',
      '/index.html',
    ])
      assertProblem(await app.inject({ method: 'GET', url }), 404, 'not-found');
  });

  test('demo.enabled false: nothing is served outside WHIP', async () => {
    const { app } = await setup([entryFor(1)], { demo: { enabled: false } });
    for (const url of ['/', '/demo/demo.js', '/demo/demo.css'])
      assertProblem(await app.inject({ method: 'GET', url }), 404, 'not-found');
    assert.equal((await post(app)).statusCode, 201);
  });
});
