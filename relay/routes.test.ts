import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRoutingTable } from '../protocol/routing-table.ts';
import { Routes } from './routes.ts';

function table(input: unknown) {
  const result = parseRoutingTable(input);
  assert.ok(result.ok, result.ok ? '' : result.error);
  return result.table;
}

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

  test('empty', () => {
    const empty = Routes.empty();
    assert.equal(empty.generation, 0);
    assert.equal(empty.size, 0);
    assert.equal(empty.byId(1), undefined);
    assert.equal(empty.byTunnel('10.0.0.1', 4000), undefined);
  });

  test('a table without transceivers', () => {
    const none = new Routes(table({ clusterId: 1, generation: 3 }));
    assert.equal(none.size, 0);
    assert.equal(none.generation, 3);
  });
});
