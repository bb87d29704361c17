import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { TransportAddress } from '../protocol/address.ts';
import { parseCidr } from '../protocol/cidr.ts';
import { parseRoutingTable } from '../protocol/routing-table.ts';
import {
  localClusterOf,
  mergePeers,
  type PeerSpec,
  pickPeerRelay,
  routesInputFor,
  stableHash,
} from './peer-routes.ts';

const v4 = (address: string, port = 3478): TransportAddress => ({ family: 4, address, port });
const v6 = (address: string, port = 3478): TransportAddress => ({ family: 6, address, port });

describe('mergePeers', () => {
  test('configuration first, then the table; the first entry for a cluster wins; never this cluster', () => {
    const config: PeerSpec[] = [{ clusterId: 2, relays: [v4('10.0.0.2')] }];
    const table: PeerSpec[] = [
      { clusterId: 2, relays: [v4('198.18.3.2')], region: 'us-east' },
      { clusterId: 3, relays: [v4('198.18.4.2')] },
      { clusterId: 3, relays: [v4('198.18.4.9')] },
      { clusterId: 1, relays: [v4('198.18.9.9')] },
    ];
    const merged = mergePeers(config, table, 1);
    assert.deepEqual(
      merged.map((peer) => [peer.clusterId, peer.relays[0]!.address]),
      [
        [2, '10.0.0.2'],
        [3, '198.18.4.2'],
      ],
    );
    assert.equal(mergePeers([], table, undefined).length, 3, 'an edge relay has no cluster of its own');
  });
});

describe('pickPeerRelay', () => {
  const relays = [v4('198.18.3.2'), v6('2001:db8::2'), v4('198.18.3.3'), v4('198.18.3.4')];

  test('only families this relay can send to; none usable → undefined', () => {
    assert.equal(pickPeerRelay([v6('2001:db8::2')], 'a|1', new Set([4])), undefined);
    assert.equal(pickPeerRelay([], 'a|1', new Set([4, 6])), undefined);
    assert.equal(pickPeerRelay(relays, 'a|1', new Set([6]))?.address, '2001:db8::2');
  });

  test('property: the pick is one of the usable relays and depends only on the client and the list', () => {
    fc.assert(
      fc.property(fc.string(), fc.subarray([4, 6] as const, { minLength: 1 }), (client, families) => {
        const usable = new Set(families);
        const pick = pickPeerRelay(relays, client, usable);
        assert.ok(pick);
        assert.ok(usable.has(pick.family));
        assert.ok(relays.includes(pick));
        assert.equal(pickPeerRelay([...relays], client, new Set(families)), pick);
      }),
    );
  });

  test('property: stableHash is a uint32 and spreads clients over the relays', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const hash = stableHash(text);
        assert.ok(Number.isInteger(hash) && hash >= 0 && hash <= 0xffffffff);
      }),
    );
    const counts = new Map<string, number>();
    for (let port = 0; port < 3000; port++) {
      const pick = pickPeerRelay(relays, `192.0.2.${port % 250}|${40000 + port}`, new Set([4]))!;
      counts.set(pick.address, (counts.get(pick.address) ?? 0) + 1);
    }
    assert.equal(counts.size, 3);
    for (const count of counts.values()) assert.ok(count > 800 && count < 1200, `uneven: ${[...counts]}`);
  });
});

describe('routesInputFor', () => {
  const parsed = parseRoutingTable({
    clusterId: 1,
    generation: 9,
    transceivers: [{ id: 5, tunnel: '10.0.0.5:7000', state: 'active' }],
    peers: [{ clusterId: 2, relays: ['198.18.4.2:3478'] }],
    edgeRelays: ['198.18.2.0/24'],
  });
  assert.ok(parsed.ok);
  const table = parsed.table;

  test('a cluster relay delivers its transceivers, forwards to peers, accepts config ∪ table edge relays', () => {
    const input = routesInputFor(
      { mode: 'cluster', clusterId: 1, peers: [], edgeRelays: [parseCidr('203.0.113.9')] },
      table,
    );
    assert.equal(input.generation, 9);
    assert.equal(input.transceivers.length, 1);
    assert.deepEqual(
      input.peers.map((peer) => peer.clusterId),
      [2],
    );
    assert.equal(input.edgeRelays.length, 2);
    assert.equal(localClusterOf({ mode: 'cluster', clusterId: 1 }), 1);
  });

  test('an edge relay delivers to no transceiver and has no cluster of its own; it may have no table', () => {
    const role = {
      mode: 'edge' as const,
      clusterId: 1,
      peers: [{ clusterId: 3, relays: [v4('198.18.5.2')] }],
      edgeRelays: [],
    };
    const input = routesInputFor(role, table);
    assert.equal(input.transceivers.length, 0);
    assert.deepEqual(
      input.peers.map((peer) => peer.clusterId),
      [3, 2],
    );
    assert.equal(localClusterOf(role), -1);
    const alone = routesInputFor(role, undefined);
    assert.equal(alone.generation, 0);
    assert.deepEqual(
      alone.peers.map((peer) => peer.clusterId),
      [3],
    );
  });
});
