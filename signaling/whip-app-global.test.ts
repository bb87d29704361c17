// Region-aware placement over several clusters (docs/global-tier.md): the caller's region from the
// header or its address, the nearest cluster with room, overflow to the next, the edge relay of the
// caller's region in the answer, session URLs that name the cluster. Transceivers are the contract
// double (real HTTP servers on loopback).
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { parseRoutingTable, type RoutingTable } from '../protocol/routing-table.ts';
import { CHROME_AUDIO_OFFER } from '../protocol/testdata/offers.ts';
import { apiTokenFor } from './clusters.ts';
import { SignalingConfigSchema } from './config.ts';
import { createSignalingMetrics } from './metrics.ts';
import type { PlacementCluster } from './placement.ts';
import { StatusCache } from './status-cache.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';
import { TransceiverClient } from './transceiver-client.ts';
import { buildWhipApp } from './whip-app.ts';

// Transceiver 100 exists in both clusters: IDs are unique per cluster only.
let east: TransceiverDouble;
let west: TransceiverDouble;
before(async () => {
  // Each cluster's transceivers take their own API token: cluster 1 the shared one.
  east = await TransceiverDouble.start({ id: 100, clusterId: 1, capacity: 1, token: 'shared-token' });
  west = await TransceiverDouble.start({ id: 100, clusterId: 2, capacity: 5, token: 'west-token' });
});
after(async () => {
  await east.close();
  await west.close();
});
beforeEach(() => {
  east.reset(1);
  west.reset(5);
});

const CONFIG = {
  clusters: [
    { clusterId: 1, region: 'us-east', routingTable: { file: 'c1.yaml' }, relays: ['198.18.3.2:3478'] },
    {
      clusterId: 2,
      region: 'us-west',
      routingTable: { file: 'c2.yaml' },
      relays: ['198.18.4.2:3478'],
      tcpRelays: ['198.18.4.2:443'],
      apiTokens: ['west-token'],
    },
  ],
  transceivers: { apiTokens: ['shared-token'] },
  edgeRelays: [
    {
      region: 'eu',
      relays: ['198.18.2.2:3478'],
      tcpRelays: ['198.18.2.2:443'],
      clientCidrs: ['198.18.1.0/24'],
    },
  ],
  region: { nearest: { eu: ['us-east', 'us-west'] } },
};

function tableOf(clusterId: number, double: TransceiverDouble): RoutingTable {
  const parsed = parseRoutingTable({
    clusterId,
    transceivers: [{ id: 100, tunnel: '10.0.0.1:7000', state: 'active', api: double.api }],
  });
  assert.ok(parsed.ok);
  return parsed.table;
}

let app: FastifyInstance | undefined;
let caches: StatusCache[] = [];
afterEach(async () => {
  for (const cache of caches) cache.close();
  caches = [];
  await app?.close();
  app = undefined;
});

async function setup(config: Record<string, unknown> = CONFIG): Promise<{ app: FastifyInstance }> {
  const parsed = SignalingConfigSchema.parse(config);
  const clientFor = (token: string | undefined) =>
    new TransceiverClient({ requestTimeoutMs: 1_000, statusTimeoutMs: 300, token });
  const client = clientFor(parsed.transceivers.apiTokens[0]);
  const clusters: PlacementCluster[] = [];
  for (const [cluster, double] of [
    [parsed.clusters![0]!, east],
    [parsed.clusters![1]!, west],
  ] as const) {
    const own = clientFor(apiTokenFor(cluster, parsed.transceivers.apiTokens));
    const cache = new StatusCache({ client: own, intervalMs: 60_000, staleMs: 120_000 });
    caches.push(cache);
    const table = tableOf(cluster.clusterId, double);
    await cache.setTable(table);
    clusters.push({
      clusterId: cluster.clusterId,
      region: cluster.region,
      relays: cluster.relays.map((relay) => `${relay.address}:${relay.port}`),
      tcpRelays: cluster.tcpRelays.map((relay) => `${relay.address}:${relay.port}`),
      routingTable: () => table,
      statuses: cache,
      client: own,
    });
  }
  const metrics = createSignalingMetrics(() => ({ available: 0, full: 0, draining: 0, unavailable: 0 }));
  app = buildWhipApp({ config: parsed, clusters, client, metrics, logger: pino({ level: 'silent' }) });
  await app.ready();
  return { app };
}

function post(target: FastifyInstance, headers: Record<string, string> = {}, remoteAddress = '203.0.113.1') {
  return target.inject({
    method: 'POST',
    url: '/whip',
    headers: { 'content-type': 'application/sdp', ...headers },
    payload: CHROME_AUDIO_OFFER,
    remoteAddress,
  });
}

/** The session the double holds for a Location `/whip/sessions/<cluster>-<transceiver>.<session>`. */
function sessionOf(location: unknown) {
  const match = /^\/whip\/sessions\/(\d+)-(\d+)\.(.+)$/.exec(String(location));
  assert.ok(match, `Location ${String(location)} names the cluster`);
  const double = match[1] === '1' ? east : west;
  const session = double.sessions.get(decodeURIComponent(match[3]!));
  assert.ok(session, 'the named cluster’s transceiver holds the session');
  return { cluster: Number(match[1]), transceiver: Number(match[2]), session };
}

describe('POST /whip with several clusters', () => {
  test('a caller from the edge’s client range: nearest cluster, the edge relay advertised, region passed on', async () => {
    const { app } = await setup();
    const response = await post(app, {}, '198.18.1.2');
    assert.equal(response.statusCode, 201, response.body);
    const { cluster, transceiver, session } = sessionOf(response.headers.location);
    assert.equal(cluster, 1);
    assert.equal(transceiver, 100);
    assert.deepEqual(session.relays, ['198.18.2.2:3478']);
    assert.deepEqual(session.tcpRelays, ['198.18.2.2:443'], 'the edge’s TCP port beside its UDP one');
    assert.equal(session.metadata?.region, 'eu');
  });

  test('a full cluster overflows to the next; when all are full, 503 names each cluster', async () => {
    const { app } = await setup();
    const first = await post(app, {}, '198.18.1.2');
    assert.equal(sessionOf(first.headers.location).cluster, 1);
    const second = await post(app, {}, '198.18.1.2');
    assert.equal(second.statusCode, 201, second.body);
    const overflow = sessionOf(second.headers.location);
    assert.equal(overflow.cluster, 2, 'cluster 1 had room for one');
    assert.deepEqual(overflow.session.relays, ['198.18.2.2:3478'], 'still through the caller’s edge');
    west.reset(0);
    for (const cache of caches) await cache.pollAll();
    const refused = await post(app, {}, '198.18.1.2');
    assert.equal(refused.statusCode, 503, refused.body);
    assert.match(refused.json().detail, /cluster 1: 1 transceiver: 1 full; cluster 2: 1 transceiver: 1 full/);
  });

  test('the region header wins over the address: a region with no edge gets the cluster’s own relays', async () => {
    const { app } = await setup();
    const response = await post(app, { 'x-voice-edge-region': 'US-West' }, '198.18.1.2');
    assert.equal(response.statusCode, 201, response.body);
    const { cluster, session } = sessionOf(response.headers.location);
    assert.equal(cluster, 2, 'its own region first');
    assert.deepEqual(session.relays, ['198.18.4.2:3478']);
    assert.deepEqual(session.tcpRelays, ['198.18.4.2:443']);
    assert.equal(session.metadata?.region, 'us-west');
  });

  test('a caller of unknown region: clusters in configured order, their own relays', async () => {
    const { app } = await setup();
    const response = await post(app);
    const { cluster, session } = sessionOf(response.headers.location);
    assert.equal(cluster, 1);
    assert.deepEqual(session.relays, ['198.18.3.2:3478']);
    assert.equal(session.tcpRelays, undefined, 'cluster 1 has no TCP port: none sent');
    assert.equal(session.metadata?.region, undefined);
  });

  test('DELETE and PATCH find the session in the cluster its URL names', async () => {
    const { app } = await setup();
    const created = await post(app, { 'x-voice-edge-region': 'us-west' });
    const location = String(created.headers.location);
    const { session } = sessionOf(location);
    // Cluster 1's transceiver 100 does not have it: the URL's cluster decides.
    assert.equal(east.sessions.has(session.sessionId), false);
    const deleted = await app.inject({ method: 'DELETE', url: location });
    assert.equal(deleted.statusCode, 200, deleted.body);
    assert.equal(west.sessions.has(session.sessionId), false);
    const unknownCluster = await app.inject({
      method: 'DELETE',
      url: location.replace('/2-100.', '/9-100.'),
    });
    assert.equal(unknownCluster.statusCode, 404);
    // Create and delete went to cluster 2 with its own token, never the shared one.
    assert.equal(west.unauthorized, 0);
  });

  test('a custom region header name', async () => {
    const { app } = await setup({ ...CONFIG, region: { header: 'CF-Region', nearest: {} } });
    const response = await post(app, { 'cf-region': 'us-west' });
    assert.equal(sessionOf(response.headers.location).cluster, 2);
  });
});

describe('signaling config with clusters', () => {
  const errorOf = (config: unknown) => {
    const result = SignalingConfigSchema.safeParse(config);
    assert.equal(result.success, false);
    return result.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
  };

  test('clusters replace routingTable; both or neither is an error', () => {
    assert.equal(SignalingConfigSchema.safeParse(CONFIG).success, true);
    assert.match(
      errorOf({ ...CONFIG, routingTable: { file: 'r.yaml' } }),
      /clusters: set routingTable \(one cluster\) or clusters \(several\), not both/,
    );
    assert.match(errorOf({}), /routingTable: required/);
  });

  test('cluster IDs are unique; edge relays name known clusters; regions are well formed', () => {
    const [one] = CONFIG.clusters;
    assert.match(errorOf({ clusters: [one, one] }), /clusters\.1\.clusterId: cluster 1 is listed twice/);
    assert.match(
      errorOf({ ...CONFIG, edgeRelays: [{ region: 'eu', relays: ['198.18.2.2:3478'], clusters: [7] }] }),
      /edgeRelays\.0\.clusters: cluster 7 is not in clusters/,
    );
    assert.match(errorOf({ clusters: [{ ...one, region: 'EU West' }] }), /clusters\.0\.region: a region is/);
    assert.match(errorOf({ clusters: [{ ...one, relays: [] }] }), /clusters\.0\.relays/);
    assert.match(
      errorOf({ ...CONFIG, edgeRelays: [{ region: 'eu', relays: ['198.18.2.2:3478'], clientCidrs: ['x'] }] }),
      /edgeRelays\.0\.clientCidrs\.0/,
    );
  });

  test('each cluster’s transceivers need a token: its own apiTokens or transceivers.apiTokens', () => {
    const { transceivers: _shared, ...withoutShared } = CONFIG;
    assert.match(
      errorOf(withoutShared),
      /transceivers\.apiTokens: required: the bearer token of the transceivers' API .*or apiTokens on every cluster/,
    );
    const everyOwn = {
      ...withoutShared,
      clusters: CONFIG.clusters.map((cluster) => ({ ...cluster, apiTokens: 'a-token,b-token' })),
    };
    const parsed = SignalingConfigSchema.parse(everyOwn);
    assert.deepEqual(parsed.clusters?.[0]?.apiTokens, ['a-token', 'b-token']);
  });
});
