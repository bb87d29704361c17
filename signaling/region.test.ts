import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseCidr } from '../protocol/cidr.ts';
import { advertisedRelays, callerRegion, clusterOrder, type EdgeRelaySite } from './region.ts';

const EDGES: EdgeRelaySite[] = [
  {
    region: 'eu',
    relays: ['198.18.2.2:3478'],
    tcpRelays: ['198.18.2.2:443'],
    clientCidrs: [parseCidr('198.18.1.0/24')],
    clusters: undefined,
  },
  {
    region: 'ap',
    relays: ['198.18.5.2:3478'],
    tcpRelays: [],
    clientCidrs: [parseCidr('2001:db8::/32')],
    clusters: [2],
  },
];

describe('callerRegion', () => {
  test('the header first (case ignored), then the edge relays’ client ranges, then the default', () => {
    assert.deepEqual(callerRegion('US-East', '198.18.1.2', EDGES, { defaultRegion: 'x' }), {
      region: 'us-east',
      source: 'header',
    });
    assert.deepEqual(callerRegion(undefined, '198.18.1.2', EDGES, { defaultRegion: 'x' }), {
      region: 'eu',
      source: 'address',
    });
    assert.deepEqual(callerRegion(undefined, '::ffff:198.18.1.9', EDGES, { defaultRegion: undefined }), {
      region: 'eu',
      source: 'address',
    });
    assert.deepEqual(
      callerRegion(undefined, '2001:db8::5', EDGES, { defaultRegion: undefined }).region,
      'ap',
    );
    assert.deepEqual(callerRegion(undefined, '203.0.113.1', EDGES, { defaultRegion: 'us' }), {
      region: 'us',
      source: 'default',
    });
    assert.deepEqual(callerRegion(undefined, '203.0.113.1', EDGES, { defaultRegion: undefined }), {
      region: undefined,
      source: 'none',
    });
  });

  test('a malformed or repeated header is ignored, not refused', () => {
    for (const bad of ['', ' ', 'eu west', 'eu_west', '-eu', 'eu-', 'é', 'a'.repeat(64), '../x']) {
      assert.equal(
        callerRegion(bad, '198.18.1.2', EDGES, { defaultRegion: undefined }).source,
        'address',
        bad,
      );
    }
    assert.equal(
      callerRegion(['eu', 'us'], '203.0.113.1', EDGES, { defaultRegion: undefined }).source,
      'none',
    );
  });
});

describe('clusterOrder', () => {
  const clusters = [
    { clusterId: 1, region: 'us-east' },
    { clusterId: 2, region: 'us-west' },
    { clusterId: 3, region: 'eu' },
    { clusterId: 4, region: undefined },
    { clusterId: 5, region: 'us-east' },
  ];
  const ids = (list: typeof clusters) => list.map((cluster) => cluster.clusterId);

  test('the nearest list decides; every other cluster follows in configured order', () => {
    const nearest = { eu: ['eu', 'us-east'], ap: ['us-west'] };
    assert.deepEqual(ids(clusterOrder(clusters, 'eu', nearest)), [3, 1, 5, 2, 4]);
    assert.deepEqual(ids(clusterOrder(clusters, 'ap', nearest)), [2, 1, 3, 4, 5]);
  });

  test('without a list, the caller’s own region first; without a region, configured order', () => {
    assert.deepEqual(ids(clusterOrder(clusters, 'us-east', {})), [1, 5, 2, 3, 4]);
    assert.deepEqual(ids(clusterOrder(clusters, 'mars', {})), [1, 2, 3, 4, 5]);
    assert.deepEqual(ids(clusterOrder(clusters, undefined, { eu: ['eu'] })), [1, 2, 3, 4, 5]);
  });

  test('property: the order is a permutation of the clusters, preferred regions first in list order', () => {
    const regions = ['a', 'b', 'c', 'd'];
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.constantFrom(...regions), { nil: undefined }), { maxLength: 8 }),
        fc.option(fc.constantFrom(...regions), { nil: undefined }),
        fc.uniqueArray(fc.constantFrom(...regions)),
        (clusterRegions, region, preference) => {
          const list = clusterRegions.map((r, i) => ({ clusterId: i, region: r }));
          const nearest = region === undefined ? {} : { [region]: preference };
          const ordered = clusterOrder(list, region, nearest);
          assert.deepEqual(
            ordered.map((c) => c.clusterId).sort((x, y) => x - y),
            list.map((c) => c.clusterId),
          );
          const rank = (c: { region: string | undefined }) => {
            const index = region === undefined || c.region === undefined ? -1 : preference.indexOf(c.region);
            return index === -1 ? preference.length : index;
          };
          for (let i = 1; i < ordered.length; i++) {
            const [a, b] = [ordered[i - 1]!, ordered[i]!];
            assert.ok(rank(a) < rank(b) || (rank(a) === rank(b) && a.clusterId < b.clusterId));
          }
        },
      ),
    );
  });
});

describe('advertisedRelays', () => {
  test('the edge relay of the caller’s region if it reaches the cluster, else the cluster’s relays', () => {
    const own = { relays: ['198.18.3.2:3478'], tcpRelays: ['198.18.3.2:443'] };
    const cluster = { ...own, via: 'cluster' };
    assert.deepEqual(advertisedRelays('eu', 1, own, EDGES), {
      relays: ['198.18.2.2:3478'],
      tcpRelays: ['198.18.2.2:443'],
      via: 'edge',
    });
    assert.deepEqual(advertisedRelays('ap', 2, own, EDGES), {
      relays: ['198.18.5.2:3478'],
      tcpRelays: [],
      via: 'edge',
    });
    assert.deepEqual(advertisedRelays('ap', 1, own, EDGES), cluster, 'ap’s edge serves 2 only');
    assert.deepEqual(advertisedRelays('us-east', 1, own, EDGES), cluster);
    assert.deepEqual(advertisedRelays(undefined, 1, own, EDGES), cluster);
  });
});
