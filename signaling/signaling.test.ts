// The signaling process as a whole, over real loopback sockets: startup and readiness, the routing
// table file followed live, metrics, graceful shutdown with a request in flight.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { CHROME_AUDIO_OFFER } from '../protocol/testdata/offers.ts';
import {
  parseRoutingDocument,
  type RoutingSource,
  type RoutingSourceListener,
} from '../routing/routing-source.ts';
import { freeTcpPort } from '../test/support/net.ts';
import { type SignalingConfig, SignalingConfigSchema } from './config.ts';
import { type SignalingHandle, SignalingStartError, startSignaling } from './signaling.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';

const CLUSTER = 5;
const silent = pino({ level: 'silent' });
let dir: string;
let routingFile: string;
let doubles: TransceiverDouble[];
let running: SignalingHandle | undefined;

function routingYaml(generation: number, ids: number[]): string {
  const lines = [`clusterId: ${CLUSTER}`, `generation: ${generation}`, 'transceivers:'];
  for (const id of ids) {
    lines.push(
      `  - { id: ${id}, tunnel: "10.0.0.1:${4000 + id}", state: active, api: "${doubles[id - 1]!.api}" }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Atomic replace, as Kubernetes does with a mounted ConfigMap. */
function writeRouting(text: string): void {
  const temporary = `${routingFile}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, routingFile);
}

function config(extra: Record<string, unknown> = {}): SignalingConfig {
  return SignalingConfigSchema.parse({
    http: { port: 0 },
    ops: { port: 0 },
    routingTable: { file: routingFile },
    relays: ['198.51.100.9:3478'],
    shutdown: { drainMs: 0 },
    transceivers: { apiTokens: ['test-api-token'] },
    ...extra,
  });
}

async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const offer = (port: number, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${port}/whip`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...headers },
    body: CHROME_AUDIO_OFFER,
  });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'voice-edge-signaling-'));
  routingFile = join(dir, 'routing.yaml');
  doubles = await Promise.all(
    [1, 2].map((id) => TransceiverDouble.start({ id, clusterId: CLUSTER, capacity: 5 })),
  );
});
after(async () => {
  await Promise.all(doubles.map((double) => double.close()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  for (const double of doubles) double.reset(5);
});
afterEach(async () => {
  await running?.shutdown();
  running = undefined;
});

describe('startSignaling', () => {
  test('serves WHIP on the public port and health, readiness and metrics on the ops port', async () => {
    writeRouting(routingYaml(4, [1]));
    running = await startSignaling(config(), silent);
    const ops = `http://127.0.0.1:${running.opsPort}`;
    assert.deepEqual(await (await fetch(`${ops}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${ops}/readyz`);
    assert.equal(ready.status, 200);

    const created = await offer(running.httpPort, { origin: 'https://app.example.com' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('access-control-allow-origin'), '*');
    const location = created.headers.get('location')!;
    assert.match(location, /^\/whip\/sessions\/1\./);
    assert.match(await created.text(), /198\.51\.100\.9 3478 typ host/);
    const deleted = await fetch(`http://127.0.0.1:${running.httpPort}${location}`, { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.equal(doubles[0]!.sessions.size, 0);

    // The WHIP port does not serve the ops endpoints.
    assert.equal((await fetch(`http://127.0.0.1:${running.httpPort}/metrics`)).status, 404);
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    for (const pattern of [
      /voice_edge_signaling_requests_total\{route="\/whip",method="POST",status="201"\} 1/,
      /voice_edge_signaling_requests_total\{route="\/whip\/sessions\/:id",method="DELETE",status="200"\} 1/,
      /voice_edge_signaling_offer_to_answer_seconds_bucket\{le="\+Inf"\} 1/,
      /voice_edge_signaling_sessions_placed_total\{transceiver="1"\} 1/,
      /voice_edge_signaling_routing_table_generation 4/,
      /voice_edge_signaling_transceivers\{availability="available"\} 1/,
      /voice_edge_signaling_no_capacity_total 0/,
      /voice_edge_signaling_status_poll_errors_total/,
      /voice_edge_signaling_process_cpu_seconds_total/,
    ]) {
      assert.match(metrics, pattern);
    }
  });

  test('follows the routing table file; an invalid update keeps the previous table', async () => {
    writeRouting(routingYaml(1, [1]));
    running = await startSignaling(config(), silent);
    const ops = `http://127.0.0.1:${running.opsPort}`;
    assert.match(
      (await (await offer(running.httpPort)).headers.get('location')) ?? '',
      /^\/whip\/sessions\/1\./,
    );

    writeRouting(routingYaml(2, [2]));
    await waitFor(
      async () => /routing_table_generation 2/.test(await (await fetch(`${ops}/metrics`)).text()),
      'generation 2',
    );
    const moved = await offer(running.httpPort);
    assert.equal(moved.status, 201);
    assert.match(moved.headers.get('location') ?? '', /^\/whip\/sessions\/2\./);

    writeRouting('clusterId: not-a-number\n');
    await waitFor(
      async () => /routing_table_errors_total 1/.test(await (await fetch(`${ops}/metrics`)).text()),
      'the rejected update',
    );
    assert.match((await offer(running.httpPort)).headers.get('location') ?? '', /^\/whip\/sessions\/2\./);
  });

  test('not ready until the routing table is loaded and the first status round is done', async () => {
    let release: (value: { table: RoutingTable; document: unknown }) => void = () => {};
    const parsed = parseRoutingDocument(routingYaml(1, [1]), 'test');
    assert.ok(parsed.ok);
    const slowSource: RoutingSource = {
      start: (_listener: RoutingSourceListener) =>
        new Promise((resolve) => {
          release = resolve;
        }),
      close: () => {},
    };
    // The ops port must be known to probe it while starting: a fixed free one.
    const opsPort = await freeTcpPort();
    const starting = startSignaling(config({ ops: { port: opsPort } }), silent, slowSource);
    await waitFor(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status === 503;
      } catch {
        return false;
      }
    }, 'the ops port');
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${opsPort}/readyz`)).json(), {
      status: 'starting',
    });
    assert.equal((await fetch(`http://127.0.0.1:${opsPort}/healthz`)).status, 200);
    release({ table: parsed.table, document: parsed.document });
    running = await starting;
    assert.equal((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status, 200);
  });

  test('a routing table that cannot be read fails the start and frees the ops port', async () => {
    await assert.rejects(
      startSignaling(config({ routingTable: { file: join(dir, 'missing.yaml') } }), silent),
      (error: unknown) => error instanceof SignalingStartError && /missing\.yaml/.test(error.message),
    );
  });

  test('shutdown: unready at once, serves during the drain, finishes requests in flight, then stops', async () => {
    writeRouting(routingYaml(1, [1]));
    running = await startSignaling(config({ shutdown: { drainMs: 400 } }), silent);
    const { httpPort, opsPort } = running;
    doubles[0]!.createDelayMs = 700;
    const inFlight = offer(httpPort);
    await waitFor(
      () => doubles[0]!.requests.some((request) => request.url === '/sessions'),
      'the offer to arrive',
    );
    const stopping = running.shutdown();
    const readiness = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
    assert.equal(readiness.status, 503);
    assert.deepEqual(await readiness.json(), { status: 'draining' });
    // During the drain new requests are still served.
    const preflight = await fetch(`http://127.0.0.1:${httpPort}/whip`, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    const answered = await inFlight;
    assert.equal(answered.status, 201, 'the request in flight finished');
    assert.equal(answered.headers.get('connection'), 'close');
    await stopping;
    await running.stopped;
    await assert.rejects(fetch(`http://127.0.0.1:${httpPort}/whip`, { method: 'OPTIONS' }));
    await assert.rejects(fetch(`http://127.0.0.1:${opsPort}/healthz`));
    running = undefined;
  });
});
