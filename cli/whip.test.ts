import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { describeErrorResponse, WhipError, whipDelete, whipOffer } from './whip.ts';

describe('describeErrorResponse', () => {
  test('a problem: status, code, detail, Retry-After', async () => {
    const response = new Response(
      JSON.stringify({
        code: 'no-capacity',
        title: 'No capacity',
        status: 503,
        detail: 'no active transceiver has room',
      }),
      { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '5' } },
    );
    assert.equal(
      await describeErrorResponse(response),
      '503 no-capacity: no active transceiver has room (retry after 5 s)',
    );
  });

  test('401 suggests --token; a short text body is quoted', async () => {
    assert.match(
      await describeErrorResponse(new Response('nope', { status: 401 })),
      /^401: nope \(pass --token\)$/,
    );
  });
});

describe('whipOffer and whipDelete against a small WHIP server', () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];
  before(async () => {
    server = createServer((request, response) => {
      seen.push(`${request.method} ${request.url} ${request.headers.authorization ?? '-'}`);
      request.resume();
      if (request.method === 'POST' && request.url === '/whip') {
        response.writeHead(201, { 'content-type': 'application/sdp', location: '/whip/sessions/1.abc' });
        response.end('v=0\r\n');
      } else if (request.method === 'DELETE' && request.url === '/whip/sessions/1.abc') {
        response.writeHead(200).end();
      } else {
        response.writeHead(404, { 'content-type': 'application/problem+json' });
        response.end(
          JSON.stringify({ code: 'not-found', detail: `no resource at ${request.method} ${request.url}` }),
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('POST: the answer and the session URL resolved against the endpoint; DELETE ends it', async () => {
    const session = await whipOffer(new URL(`${base}/whip`), 'v=0\r\n', 'tok', AbortSignal.timeout(2_000));
    assert.equal(session.answer, 'v=0\r\n');
    assert.equal(session.location.href, `${base}/whip/sessions/1.abc`);
    assert.equal(await whipDelete(session.location, 'tok', 2_000), undefined);
    assert.deepEqual(seen.slice(-2), ['POST /whip Bearer tok', 'DELETE /whip/sessions/1.abc Bearer tok']);
  });

  test('a refusal is a WhipError with the status and the problem detail', async () => {
    await assert.rejects(
      whipOffer(new URL(`${base}/other`), 'v=0\r\n', undefined, AbortSignal.timeout(2_000)),
      (error) => {
        assert.ok(error instanceof WhipError);
        assert.equal(error.status, 404);
        assert.match(error.message, /refused the offer: 404 not-found: no resource at POST \/other$/);
        return true;
      },
    );
    assert.match(
      (await whipDelete(new URL(`${base}/whip/sessions/9.x`), undefined, 2_000))!,
      /404 not-found/,
    );
  });

  test('nothing listening: "cannot reach" with the system error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      whipOffer(new URL(`http://127.0.0.1:${port}/whip`), 'v=0\r\n', undefined, AbortSignal.timeout(2_000)),
      /cannot reach the WHIP endpoint .*: connect ECONNREFUSED/,
    );
  });
});
