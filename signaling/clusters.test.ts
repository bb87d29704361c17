// followClusters: each cluster's routing table from its own source, each cluster's transceivers
// polled by its own status cache; a table for the wrong cluster is refused.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { stringify } from 'yaml';
import { waitUntil } from '../test/support/wait.ts';
import { apiTokenFor, followClusters } from './clusters.ts';
import { SignalingConfigSchema } from './config.ts';
import { createSignalingMetrics } from './metrics.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';

const dir = mkdtempSync(join(tmpdir(), 'voice-edge-clusters-'));
let doubles: TransceiverDouble[];
before(async () => {
  doubles = [
    await TransceiverDouble.start({ id: 7, clusterId: 1, capacity: 4, token: 'shared-token' }),
    await TransceiverDouble.start({ id: 7, clusterId: 2, capacity: 0, token: 'cluster-2-token' }),
  ];
});
after(async () => {
  await Promise.all(doubles.map((double) => double.close()));
  rmSync(dir, { recursive: true, force: true });
});

function table(name: string, clusterId: number, api: string, generation = 1): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      clusterId,
      generation,
      transceivers: [{ id: 7, tunnel: '10.0.0.7:7000', state: 'active', api }],
    }),
  );
  return file;
}

function options() {
  const config = SignalingConfigSchema.parse({
    routingTable: { file: 'unused' },
    transceivers: { apiTokens: 'shared-token,next-token' },
  });
  return {
    transceivers: config.transceivers,
    metrics: createSignalingMetrics(() => ({ available: 0, full: 0, draining: 0, unavailable: 0 })),
    logger: pino({ level: 'silent' }),
  };
}

describe('followClusters', () => {
  test('follows every cluster: its table, its transceivers’ status, table updates', async () => {
    const c1 = table('c1.yaml', 1, doubles[0]!.api);
    const c2 = table('c2.yaml', 2, doubles[1]!.api);
    const followed = await followClusters(
      [
        { clusterId: 1, region: 'us-east', routingTable: { file: c1 }, relays: [], tcpRelays: [] },
        {
          clusterId: 2,
          region: 'us-west',
          routingTable: { file: c2 },
          relays: [],
          tcpRelays: [],
          apiTokens: ['cluster-2-token', 'shared-token'],
        },
      ],
      options(),
    );
    try {
      assert.deepEqual(
        followed.clusters.map((cluster) => [cluster.clusterId, cluster.region]),
        [
          [1, 'us-east'],
          [2, 'us-west'],
        ],
      );
      // Transceiver 7 of cluster 1 has room, transceiver 7 of cluster 2 has none.
      assert.deepEqual(followed.clusters[0]!.statuses.view(7), {
        reachable: true,
        state: 'active',
        sessions: 0,
        capacity: 4,
      });
      assert.equal(followed.clusters[1]!.statuses.view(7)?.reachable, true);
      assert.deepEqual(followed.availability(), { available: 1, full: 1, draining: 0, unavailable: 0 });
      // Each cluster's polls carried its own first token (cluster 1 the shared one).
      assert.deepEqual(
        doubles.map((double) => double.unauthorized),
        [0, 0],
      );
      table('c2.yaml', 2, doubles[1]!.api, 5);
      await waitUntil(async () => followed.clusters[1]!.routingTable().generation === 5, 8_000, 'the update');
      // A table for another cluster is refused; the previous one stays.
      table('c2.yaml', 3, doubles[1]!.api, 6);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(followed.clusters[1]!.routingTable().generation, 5);
    } finally {
      followed.close();
    }
  });

  test('refuses to start with a table for another cluster, closing what it started', async () => {
    const c1 = table('c1b.yaml', 1, doubles[0]!.api);
    const wrong = table('wrong.yaml', 9, doubles[1]!.api);
    await assert.rejects(
      followClusters(
        [
          { clusterId: 1, region: undefined, routingTable: { file: c1 }, relays: [], tcpRelays: [] },
          { clusterId: 2, region: undefined, routingTable: { file: wrong }, relays: [], tcpRelays: [] },
        ],
        options(),
      ),
      /cluster 2: the routing table is for cluster 9, configured as cluster 2/,
    );
  });

  test('one cluster without an ID: whichever the table names', async () => {
    const c1 = table('c1c.yaml', 1, doubles[0]!.api);
    const followed = await followClusters(
      [{ routingTable: { file: c1 }, relays: [], tcpRelays: [], region: undefined }],
      options(),
    );
    try {
      assert.equal(followed.clusters[0]!.clusterId, 1);
    } finally {
      followed.close();
    }
  });

  test('apiTokenFor: the cluster’s first token, else the first shared one', () => {
    assert.equal(apiTokenFor({ apiTokens: ['own', 'older'] }, ['shared']), 'own');
    assert.equal(apiTokenFor({ apiTokens: undefined }, ['shared', 'older']), 'shared');
    assert.equal(apiTokenFor({}, []), undefined);
  });
});
