// The WHIP server's limits: offer shape, per-client rate and session cap (with the liveness
// re-check and DELETE freeing a slot), and the connection limits and parser errors seen on raw
// sockets (slow headers, headers and URIs too long, too many connections).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { CHROME_AUDIO_OFFER, manyAudioSectionsOffer } from '../protocol/testdata/offers.ts';
import { SignalingConfigSchema } from './config.ts';
import { createSignalingMetrics, type SignalingMetrics } from './metrics.ts';
import { StatusCache } from './status-cache.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';
import { TransceiverClient } from './transceiver-client.ts';
import { buildWhipApp } from './whip-app.ts';

const API_TOKEN = 'limits-test-api-token';
let transceiver: TransceiverDouble;
let current: { app: FastifyInstance; cache: StatusCache; metrics: SignalingMetrics } | undefined;

before(async () => {
  transceiver = await TransceiverDouble.start({ id: 1, clusterId: 1, capacity: 50, token: API_TOKEN });
});
after(() => transceiver.close());
beforeEach(() => transceiver.reset(50));
afterEach(async () => {
  current?.cache.close();
  await current?.app.close();
  current = undefined;
});

async function setup(config: Record<string, unknown> = {}) {
  const parsed = SignalingConfigSchema.parse({
    routingTable: { file: 'unused' },
    transceivers: { apiTokens: [API_TOKEN] },
    ...config,
  });
  const client = new TransceiverClient({ requestTimeoutMs: 1_000, statusTimeoutMs: 300, token: API_TOKEN });
  const cache = new StatusCache({ client, intervalMs: 60_000, staleMs: 120_000 });
  const table: RoutingTable = {
    clusterId: 1,
    generation: 1,
    peers: [],
    edgeRelays: [],
    relaySources: [],
    transceivers: [
      {
        id: 1,
        tunnel: { family: 4, address: '10.0.0.1', port: 4001 },
        state: 'active',
        api: transceiver.api,
      },
    ],
  };
  await cache.setTable(table);
  const metrics = createSignalingMetrics(() => cache.availability());
  const app = buildWhipApp({
    config: parsed,
    routingTable: () => table,
    statuses: cache,
    client,
    metrics,
    logger: pino({ level: 'silent' }),
  });
  await app.ready();
  current = { app, cache, metrics };
  return current;
}

function post(
  app: FastifyInstance,
  from = '192.0.2.10',
  body = CHROME_AUDIO_OFFER,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'POST',
    url: '/whip',
    remoteAddress: from,
    headers: { 'content-type': 'application/sdp', ...headers },
    payload: body,
  });
}

async function refusals(metrics: SignalingMetrics, reason: string): Promise<number> {
  const metric = await metrics.offersRefused.get();
  return metric.values.find((value) => value.labels.reason === reason)?.value ?? 0;
}

describe('offer limits and per-client limits', () => {
  test('the ~700-section offer is 400 offer-too-complex; no transceiver hears of it', async () => {
    const { app, metrics } = await setup();
    const before = transceiver.requests.length;
    const response = await post(app, '192.0.2.10', manyAudioSectionsOffer(700));
    assert.equal(response.statusCode, 400);
    assert.equal(response.headers['content-type'], 'application/problem+json');
    assert.equal(response.json().code, 'offer-too-complex');
    assert.equal(transceiver.requests.length, before);
    assert.equal(await refusals(metrics, 'offer-too-complex'), 1);
    // Configurable: a limit of 700 sections lets it through this check.
    const relaxed = await setup({
      limits: { offer: { maxMediaSections: 64, maxLines: 10_000, maxLineLength: 65_536 } },
    });
    assert.equal((await post(relaxed.app, '192.0.2.10', manyAudioSectionsOffer(9))).statusCode, 201);
  });

  test('offers per client: a burst, then 429 rate-limited with Retry-After; other clients unaffected', async () => {
    const { app, metrics } = await setup({ limits: { perClient: { offerBurst: 3, offersPerMinute: 6 } } });
    for (let i = 0; i < 3; i++) assert.equal((await post(app)).statusCode, 201);
    // Invalid offers count too: the rate bounds what a client makes signaling do.
    const limited = await post(app, '192.0.2.10', 'not sdp');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().code, 'rate-limited');
    assert.equal(limited.headers['retry-after'], '10');
    assert.equal((await post(app, '192.0.2.11')).statusCode, 201, 'another address');
    assert.equal(
      (await post(app, '2001:db8:1:2::99')).statusCode,
      201,
      'an IPv6 client is its /64 (first offer)',
    );
    assert.equal(await refusals(metrics, 'rate-limited'), 1);
  });

  test('live sessions per client: 429 too-many-sessions; a session gone or DELETEd frees a slot', async () => {
    const { app, metrics } = await setup({ limits: { perClient: { maxSessions: 2 } } });
    const first = await post(app);
    assert.equal(first.statusCode, 201);
    assert.equal((await post(app)).statusCode, 201);
    // The first session ends on the transceiver (the caller went away without a DELETE).
    const firstId = decodeURIComponent(String(first.headers.location).split('.').slice(1).join('.'));
    assert.ok(transceiver.sessions.delete(firstId));
    // At the cap, signaling asks the transceiver (GET /sessions/:id), learns it is gone: placed.
    const third = await post(app);
    assert.equal(third.statusCode, 201);
    const full = await post(app);
    assert.equal(full.statusCode, 429);
    assert.equal(full.json().code, 'too-many-sessions');
    assert.equal(full.headers['retry-after'], '5');
    assert.equal((await post(app, '192.0.2.20')).statusCode, 201, 'another client has its own slots');
    // DELETE through signaling frees the slot at once (no re-check needed).
    const ended = await app.inject({ method: 'DELETE', url: String(third.headers.location) });
    assert.equal(ended.statusCode, 200);
    assert.equal((await post(app)).statusCode, 201);
    assert.equal(await refusals(metrics, 'too-many-sessions'), 1);
    const rechecks = await metrics.sessionRechecks.get();
    assert.deepEqual(
      Object.fromEntries(rechecks.values.map((value) => [value.labels.outcome, value.value])),
      { alive: 1, gone: 1 },
    );
  });

  test('with authentication, a client is its address and its token (keyed by a hash)', async () => {
    const { app } = await setup({
      auth: { tokens: ['token-a', 'token-b'] },
      limits: { perClient: { maxSessions: 1 } },
    });
    const as = (token: string) =>
      post(app, '192.0.2.30', CHROME_AUDIO_OFFER, { authorization: `Bearer ${token}` });
    assert.equal((await as('token-a')).statusCode, 201);
    assert.equal((await as('token-a')).statusCode, 429);
    assert.equal((await as('token-b')).statusCode, 201, 'the same address with another token');
  });
});

/** Opens a raw connection to the app's port. */
async function raw(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

/** Everything the server writes until it closes the connection, and how long that took. */
function untilClosed(socket: Socket): Promise<{ text: string; ms: number }> {
  const began = Date.now();
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  return new Promise((resolve) => socket.once('close', () => resolve({ text, ms: Date.now() - began })));
}

function problemOf(text: string): { status: number; type: string; body: { code: string } } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    type: /^content-type: *(.+)$/im.exec(head)?.[1]?.trim() ?? '',
    body: JSON.parse(body) as { code: string },
  };
}

describe('the public server on a real socket', () => {
  const listen = async (http: Record<string, unknown> = {}) => {
    const { app } = await setup({ http: { host: '127.0.0.1', port: 0, ...http } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    return (app.server.address() as { port: number }).port;
  };

  test('slow headers: the connection is answered 408 problem and closed after headersTimeoutMs', {
    timeout: 10_000,
  }, async () => {
    const port = await listen({ headersTimeoutMs: 500, requestTimeoutMs: 1_000 });
    const socket = await raw(port);
    const closed = untilClosed(socket);
    const trickle = (async () => {
      socket.write('POST /whip HTTP/1.1\r\nHost: x\r\n');
      // One header byte every 100 ms: never a complete request.
      for (let i = 0; i < 50 && !socket.destroyed; i++) {
        socket.write('X');
        await sleep(100);
      }
    })();
    const { text, ms } = await closed;
    await trickle;
    assert.ok(ms < 2_000, `closed after ${ms} ms`);
    const answer = problemOf(text);
    assert.equal(answer.status, 408);
    assert.equal(answer.type, 'application/problem+json');
    assert.equal(answer.body.code, 'request-timeout');
  });

  test('headers too large: 431 problem+json', async () => {
    const socket = await raw(await listen());
    const closed = untilClosed(socket);
    socket.write(`GET /whip HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    const answer = problemOf((await closed).text);
    assert.equal(answer.status, 431);
    assert.equal(answer.type, 'application/problem+json');
    assert.equal(answer.body.code, 'headers-too-large');
  });

  test('a session URL too long: 414 problem+json', async () => {
    const port = await listen();
    const response = await fetch(`http://127.0.0.1:${port}/whip/sessions/1.${'a'.repeat(2_000)}`, {
      method: 'DELETE',
    });
    assert.equal(response.status, 414);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    assert.equal(((await response.json()) as { code: string }).code, 'uri-too-long');
  });

  test('maxConnections: a connection past the cap is closed at once', async () => {
    const port = await listen({ maxConnections: 2 });
    const held = [await raw(port), await raw(port)];
    const extra = await raw(port);
    const { ms } = await untilClosed(extra);
    assert.ok(ms < 1_000);
    for (const socket of held) assert.equal(socket.destroyed, false);
    for (const socket of held) socket.destroy();
  });
});
