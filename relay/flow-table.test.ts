import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { addressKey } from '../protocol/address.ts';
import { encodeTunnelHeader } from '../protocol/tunnel.ts';
import { SLOT } from './counters.ts';
import { type Flow, FlowTable } from './flow-table.ts';
import type { Route } from './routes.ts';

const ROUTE: Route = {
  transceiverId: 1,
  tunnel: { family: 4, address: '10.0.0.1', port: 4001 },
  state: 'active',
  drainingSince: undefined,
  peerCluster: undefined,
  owner: 1,
  packetsSlot: SLOT.packetsToTransceiver,
  bytesSlot: SLOT.bytesToTransceiver,
};

function flow(port: number, ufrag: string, lastSeen = 0, address = '192.0.2.1'): Flow {
  const client = { family: 4 as const, address, port };
  return {
    key: addressKey(address, port),
    client,
    socketIndex: 0,
    via: undefined,
    ufrag,
    route: ROUTE,
    header: encodeTunnelHeader(client),
    lastSeen,
    recordedAt: 0,
    stunTokens: 0,
    stunRefilledAt: 0,
    ssrc: undefined,
  };
}

describe('FlowTable', () => {
  test('set, get, delete and size', () => {
    const table = new FlowTable({ maxFlows: 10, idleTimeoutMs: 1000 });
    const a = flow(1, 'u1');
    const b = flow(2, 'u2');
    table.set(a);
    table.set(b);
    assert.equal(table.size, 2);
    assert.equal(table.get(a.key), a);
    assert.equal(table.get(addressKey('192.0.2.1', 3)), undefined);
    assert.deepEqual([...table.values()], [a, b]);
    assert.equal(table.delete(a.key), a);
    assert.equal(table.delete(a.key), undefined);
    assert.equal(table.get(a.key), undefined);
    assert.equal(table.size, 1);
  });

  test('several flows may carry the same ufrag (one session, several addresses)', () => {
    const table = new FlowTable({ maxFlows: 10, idleTimeoutMs: 1000 });
    const a = flow(1, 'shared');
    const b = flow(2, 'shared');
    table.set(a);
    table.set(b);
    assert.equal(table.size, 2);
    table.delete(a.key);
    assert.equal(table.get(b.key), b, 'b is untouched');
  });

  test('setting a flow at an existing key replaces it', () => {
    const table = new FlowTable({ maxFlows: 10, idleTimeoutMs: 1000 });
    table.set(flow(1, 'old'));
    const replacement = flow(1, 'new');
    table.set(replacement);
    assert.equal(table.size, 1);
    assert.equal(table.get(replacement.key), replacement);
    assert.deepEqual([...table.values()], [replacement]);
    table.delete(replacement.key);
    assert.equal(table.size, 0);
  });

  test('hasRoomFor: the cap, except for replacing an existing key', () => {
    const table = new FlowTable({ maxFlows: 2, idleTimeoutMs: 1000 });
    const a = flow(1, 'u');
    assert.equal(table.hasRoomFor(a.key), true);
    table.set(a);
    table.set(flow(2, 'u'));
    assert.equal(table.hasRoomFor(flow(3, 'u').key), false);
    assert.equal(table.hasRoomFor(a.key), true);
    table.delete(a.key);
    assert.equal(table.hasRoomFor(flow(3, 'u').key), true);
  });

  test('expire removes flows idle for longer than the timeout', () => {
    const table = new FlowTable({ maxFlows: 10, idleTimeoutMs: 1000 });
    const old = flow(1, 'a', 0);
    const edge = flow(2, 'b', 1000);
    const fresh = flow(3, 'b', 1500);
    for (const f of [old, edge, fresh]) table.set(f);
    assert.equal(table.expire(1000), 0);
    assert.equal(table.expire(2000), 1);
    assert.equal(table.get(old.key), undefined);
    assert.equal(table.expire(2001), 1, 'idle for 1001 ms');
    assert.equal(table.get(edge.key), undefined);
    assert.equal(table.get(fresh.key), fresh);
    fresh.lastSeen = 5000;
    assert.equal(table.expire(5500), 0);
    assert.equal(table.expire(6001), 1);
    assert.equal(table.size, 0);
  });

  test('property: size and contents agree with a model under any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        port: fc.integer({ min: 1, max: 8 }),
        ufrag: fc.constantFrom('u1', 'u2', 'u3'),
        lastSeen: fc.integer({ min: 0, max: 100 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), port: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: 0, max: 200 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const table = new FlowTable({ maxFlows: 100, idleTimeoutMs: 50 });
        const model = new Map<number, { ufrag: string; lastSeen: number }>();
        for (const o of ops) {
          if (o.kind === 'set') {
            table.set(flow(o.port, o.ufrag, o.lastSeen));
            model.set(o.port, { ufrag: o.ufrag, lastSeen: o.lastSeen });
          } else if (o.kind === 'delete') {
            table.delete(addressKey('192.0.2.1', o.port));
            model.delete(o.port);
          } else {
            let expected = 0;
            for (const [port, entry] of model) {
              if (entry.lastSeen < o.now - 50) {
                model.delete(port);
                expected++;
              }
            }
            assert.equal(table.expire(o.now), expected);
          }
          assert.equal(table.size, model.size);
          for (let port = 1; port <= 8; port++) {
            assert.equal(
              table.get(addressKey('192.0.2.1', port))?.ufrag,
              model.get(port)?.ufrag,
              String(port),
            );
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
