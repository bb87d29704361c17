import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRoutingTable } from '../protocol/routing-table.ts';
import { SLOT } from './counters.ts';
import { Routes } from './routes.ts';

function table(input: unknown) {
  const result = parseRoutingTable(input);
  assert.ok(result.ok, result.ok ? '' : result.error);
  return result.table;
}

/** 2026-03-14T15:09:26Z, in milliseconds: when the tests' tables are first seen. */
const NOW_MS = 1_773_500_966_000;
const NOW_S = NOW_MS / 1000;

describe('Routes', () => {
  const routes = new Routes(
    table({
      clusterId: 7,
      generation: 12,
      transceivers: [
        { id: 1, tunnel: '10.0.0.1:4000', state: 'active' },
        { id: 2, tunnel: '10.0.0.1:4001', state: 'draining' },
        { id: 4294967295, tunnel: '[2001:0db8:0000::0001]:4000', state: 'active' },
      ],
    }),
    NOW_MS,
  );

  test('generation and size', () => {
    assert.equal(routes.generation, 12);
    assert.equal(routes.size, 3);
  });

  test('byId', () => {
    assert.deepEqual(routes.byId(1), {
      transceiverId: 1,
      tunnel: { family: 4, address: '10.0.0.1', port: 4000 },
      state: 'active',
      drainingSince: undefined,
      peerCluster: undefined,
      owner: 1,
      packetsSlot: SLOT.packetsToTransceiver,
      bytesSlot: SLOT.bytesToTransceiver,
    });
    assert.equal(routes.byId(2)?.state, 'draining');
    assert.equal(routes.byId(4294967295)?.tunnel.family, 6);
    assert.equal(routes.byId(3), undefined);
  });

  test('byTunnel matches address and port; IPv6 in the canonical form dgram reports', () => {
    assert.equal(routes.byTunnel('10.0.0.1', 4000), routes.byId(1));
    assert.equal(routes.byTunnel('10.0.0.1', 4001), routes.byId(2));
    assert.equal(routes.byTunnel('10.0.0.1', 4002), undefined);
    assert.equal(routes.byTunnel('10.0.0.2', 4000), undefined);
    assert.equal(routes.byTunnel('2001:db8::1', 4000), routes.byId(4294967295));
    assert.equal(routes.byTunnel('2001:db8::1', 4001), undefined);
  });

  test('a table without transceivers', () => {
    const none = new Routes(table({ clusterId: 1, generation: 3 }), NOW_MS);
    assert.equal(none.size, 0);
    assert.equal(none.generation, 3);
    assert.equal(none.byId(1), undefined);
    assert.equal(none.byTunnel('10.0.0.1', 4000), undefined);
  });
});

describe('Routes: drainingSince', () => {
  const entry = (id: number, state: 'active' | 'draining', drainingSince?: number) => ({
    id,
    tunnel: `10.0.0.1:${4000 + id}`,
    state,
    ...(drainingSince === undefined ? {} : { drainingSince }),
  });
  const routesOf = (entries: ReturnType<typeof entry>[], nowMs: number, previous?: Routes, generation = 1) =>
    new Routes(table({ clusterId: 7, generation, transceivers: entries }), nowMs, previous);

  test('is undefined for an active transceiver', () => {
    const route = routesOf([entry(1, 'active')], NOW_MS).byId(1);
    assert.equal(route?.state, 'active');
    assert.equal(route.drainingSince, undefined);
  });

  test('is the table’s drainingSince when it gives one, whatever the clock or the previous routes say', () => {
    const explicit = [
      entry(1, 'draining', 1_700_000_000),
      entry(2, 'draining', 0),
      entry(3, 'draining', 0xffffffff),
    ];
    const routes = routesOf(explicit, NOW_MS);
    assert.equal(routes.byId(1)?.drainingSince, 1_700_000_000);
    assert.equal(routes.byId(2)?.drainingSince, 0);
    assert.equal(routes.byId(3)?.drainingSince, 0xffffffff);
    // Over a previous value too: the operator's date wins.
    const previous = routesOf([entry(1, 'draining')], NOW_MS - 60_000);
    assert.equal(
      routesOf([entry(1, 'draining', 1_700_000_000)], NOW_MS, previous).byId(1)?.drainingSince,
      1_700_000_000,
    );
  });

  test('without one in the table, is now in whole Unix seconds', () => {
    assert.equal(routesOf([entry(1, 'draining')], NOW_MS).byId(1)?.drainingSince, NOW_S);
    assert.equal(
      routesOf([entry(1, 'draining')], NOW_MS + 999).byId(1)?.drainingSince,
      NOW_S,
      'rounded down',
    );
    assert.equal(routesOf([entry(1, 'draining')], NOW_MS + 1000).byId(1)?.drainingSince, NOW_S + 1);
  });

  test('is carried from the previous routes while the transceiver stays draining', () => {
    const first = routesOf([entry(1, 'draining'), entry(2, 'active')], NOW_MS);
    assert.equal(first.byId(1)?.drainingSince, NOW_S);
    const later = NOW_MS + 3_600_000;
    const second = routesOf([entry(1, 'draining'), entry(2, 'draining')], later, first, 2);
    assert.equal(second.byId(1)?.drainingSince, NOW_S, 'kept from the first sighting');
    assert.equal(second.byId(2)?.drainingSince, later / 1000, 'was active before: drains from now');
    // And on through any number of tables.
    const third = routesOf([entry(1, 'draining'), entry(2, 'draining')], later + 3_600_000, second, 3);
    assert.equal(third.byId(1)?.drainingSince, NOW_S);
    assert.equal(third.byId(2)?.drainingSince, later / 1000);
    // A previous explicit value is carried too, when a later table omits it.
    const explicit = routesOf([entry(3, 'draining', 1_700_000_000)], NOW_MS);
    assert.equal(routesOf([entry(3, 'draining')], later, explicit).byId(3)?.drainingSince, 1_700_000_000);
  });

  test('starts afresh when a transceiver drains again after being active, or is new', () => {
    const draining = routesOf([entry(1, 'draining')], NOW_MS);
    const active = routesOf([entry(1, 'active')], NOW_MS + 60_000, draining, 2);
    assert.equal(active.byId(1)?.state, 'active');
    assert.equal(active.byId(1)!.drainingSince, undefined);
    const again = routesOf([entry(1, 'draining')], NOW_MS + 120_000, active, 3);
    assert.equal(again.byId(1)?.drainingSince, NOW_S + 120);
    // An ID the previous routes did not have.
    assert.equal(
      routesOf([entry(9, 'draining')], NOW_MS + 5_000, draining, 4).byId(9)?.drainingSince,
      NOW_S + 5,
    );
  });
});

describe('Routes: peer clusters and edge relays (global relay tier)', () => {
  const peerTable = () =>
    table({
      clusterId: 7,
      generation: 4,
      transceivers: [{ id: 1, tunnel: '10.0.0.1:4000', state: 'active' }],
      peers: [
        { clusterId: 8, relays: ['198.18.3.2:3478', '198.18.3.3:3478', '[2001:db8::8]:3478'] },
        { clusterId: 9, relays: ['[2001:db8::9]:3478'] },
      ],
      edgeRelays: ['198.18.2.0/24'],
    });

  test('peerFor picks one of the peer’s relays, the same one for the same client, by family', () => {
    const routes = new Routes(peerTable(), NOW_MS, undefined, new Set([4]));
    const route = routes.peerFor(8, '192.0.2.1|5000');
    assert.ok(route);
    assert.equal(route.peerCluster, 8);
    assert.equal(route.owner, -9);
    assert.equal(route.transceiverId, -1);
    assert.equal(route.packetsSlot, SLOT.packetsToPeer);
    assert.equal(route.tunnel.family, 4, 'no IPv6 tunnel socket: IPv6 relays are not picked');
    assert.equal(routes.peerFor(8, '192.0.2.1|5000'), route);
    assert.equal(routes.peerFor(9, '192.0.2.1|5000'), undefined, 'only an IPv6 relay');
    assert.equal(routes.hasPeer(9), true);
    assert.equal(routes.peerFor(7, '192.0.2.1|5000'), undefined, 'not a peer');
    assert.equal(routes.peerCount, 2);
    // Replies from any relay of the peer are recognised as the peer's.
    assert.equal(routes.byTunnel('198.18.3.3', 3478)?.owner, -9);
    assert.equal(routes.byTunnel('2001:db8::8', 3478)?.owner, -9);
    assert.equal(routes.byTunnel('198.18.3.2', 3479), undefined);
  });

  test('clients spread over a peer’s relays', () => {
    const routes = new Routes(peerTable(), NOW_MS, undefined, new Set([4]));
    const used = new Set<string>();
    for (let port = 1000; port < 1100; port++)
      used.add(routes.peerFor(8, `192.0.2.1|${port}`)!.tunnel.address);
    assert.deepEqual([...used].sort(), ['198.18.3.2', '198.18.3.3']);
  });

  test('remap finds a flow’s route in a new table: by transceiver ID, or re-picked among the peer’s relays', () => {
    const before = new Routes(peerTable(), NOW_MS, undefined, new Set([4]));
    const after = new Routes(
      table({ clusterId: 7, generation: 5, peers: [{ clusterId: 8, relays: ['198.18.3.9:3478'] }] }),
      NOW_MS,
      before,
      new Set([4]),
    );
    assert.equal(after.remap(before.byId(1)!, 'x'), undefined, 'transceiver 1 left');
    const moved = after.remap(before.peerFor(8, '192.0.2.1|5000')!, '192.0.2.1|5000');
    assert.equal(moved?.tunnel.address, '198.18.3.9');
  });

  test('edgeSources: the table’s edge relays', () => {
    const routes = new Routes(peerTable(), NOW_MS);
    assert.equal(routes.edgeSources.contains('198.18.2.77'), true);
    assert.equal(routes.edgeSources.contains('198.18.1.2'), false);
    assert.equal(new Routes(table({ clusterId: 7 }), NOW_MS).edgeSources.contains('198.18.2.77'), false);
  });

  test('a transceiver and a peer relay at one address: the transceiver wins', () => {
    const routes = new Routes(
      table({
        clusterId: 7,
        transceivers: [{ id: 1, tunnel: '10.0.0.1:4000', state: 'active' }],
        peers: [{ clusterId: 8, relays: ['10.0.0.1:4000'] }],
      }),
      NOW_MS,
    );
    assert.equal(routes.byTunnel('10.0.0.1', 4000)?.owner, 1);
  });
});
