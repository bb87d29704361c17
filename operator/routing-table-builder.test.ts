import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRoutingTable, readPublishedTable, relaySourcesOf } from './routing-table-builder.ts';
import { pod } from './test-support/fixtures.ts';

const base = {
  clusterId: 7,
  peers: [],
  edgeRelays: [],
  relaySources: [],
  published: undefined,
  knownGeneration: 0,
};

describe('buildRoutingTable', () => {
  it('lists pods with an IP that are not terminating, by ID, with tunnel and API addresses', () => {
    const result = buildRoutingTable({
      ...base,
      pods: [
        pod(3),
        pod(1, { draining: true, drainingSince: 1_700_000_000 }),
        pod(2, { podIP: undefined }),
        pod(4, { terminating: true }),
      ],
    });
    assert.deepEqual(result.document, {
      clusterId: 7,
      generation: 1,
      transceivers: [
        {
          id: 1,
          tunnel: '10.88.0.1:7000',
          state: 'draining',
          drainingSince: 1_700_000_000,
          api: 'http://10.88.0.1:8090',
        },
        { id: 3, tunnel: '10.88.0.3:7000', state: 'active', api: 'http://10.88.0.3:8090' },
      ],
      peers: [],
    });
    assert.equal(result.changed, true);
  });

  it('writes IPv6 pod addresses in brackets', () => {
    const result = buildRoutingTable({ ...base, pods: [pod(1, { podIP: 'fd00::1' })] });
    const entry = (result.document as { transceivers: { tunnel: string; api: string }[] }).transceivers[0]!;
    assert.equal(entry.tunnel, '[fd00::1]:7000');
    assert.equal(entry.api, 'http://[fd00::1]:8090');
  });

  it('keeps the generation while the content is the same and adds one when it changes', () => {
    const first = buildRoutingTable({ ...base, pods: [pod(1), pod(2)] });
    const same = buildRoutingTable({ ...base, pods: [pod(2), pod(1)], published: first.table });
    assert.equal(same.changed, false);
    assert.equal(same.table.generation, 1);
    const drained = buildRoutingTable({
      ...base,
      pods: [pod(1), pod(2, { draining: true, drainingSince: 5 })],
      published: same.table,
    });
    assert.equal(drained.changed, true);
    assert.equal(drained.table.generation, 2);
  });

  it('continues above the generation the cluster status remembers when the ConfigMap is gone', () => {
    const result = buildRoutingTable({ ...base, pods: [pod(1)], knownGeneration: 41 });
    assert.equal(result.table.generation, 42);
  });

  it('leaves out a second pod claiming an ID or an address, keeping the older', () => {
    const result = buildRoutingTable({
      ...base,
      pods: [
        pod(5, { name: 'late', createdAt: 9_000 }),
        pod(5, { name: 'early', createdAt: 1_000, podIP: '10.88.1.1' }),
        pod(6, { name: 'same-ip', podIP: '10.88.1.1', createdAt: 9_500 }),
      ],
    });
    assert.deepEqual(result.conflicts.toSorted(), ['late', 'same-ip']);
    assert.equal(result.table.transceivers.length, 1);
  });

  it('publishes the peers, never this cluster itself', () => {
    const result = buildRoutingTable({
      ...base,
      pods: [],
      peers: [
        { clusterId: 8, region: 'eu', relays: ['192.0.2.1:3478'] },
        { clusterId: 7, relays: ['192.0.2.9:3478'] },
      ],
    });
    assert.deepEqual((result.document as { peers: unknown }).peers, [
      { clusterId: 8, relays: ['192.0.2.1:3478'], region: 'eu' },
    ]);
  });

  it('publishes the edge relays the cluster accepts, and a change of them is a new generation', () => {
    const before = buildRoutingTable({ ...base, pods: [] });
    const result = buildRoutingTable({
      ...base,
      pods: [],
      edgeRelays: ['198.51.100.0/24', '2001:db8::7'],
      published: before.table,
    });
    assert.deepEqual((result.document as { edgeRelays: unknown }).edgeRelays, [
      '198.51.100.0/24',
      '2001:db8::7/128',
    ]);
    assert.equal(result.changed, true);
    assert.equal(result.table.generation, before.table.generation + 1);
  });

  it('reads back what it publishes, and nothing from garbage', () => {
    const result = buildRoutingTable({ ...base, pods: [pod(1)] });
    const again = readPublishedTable(JSON.stringify(result.document));
    assert.deepEqual(again, result.table);
    assert.equal(readPublishedTable('{'), undefined);
    assert.equal(readPublishedTable('{"clusterId": "x"}'), undefined);
    assert.equal(readPublishedTable(undefined), undefined);
  });
});

describe('relaySources', () => {
  const relay = (status: Record<string, unknown>, meta: Record<string, unknown> = {}) => ({
    metadata: { name: 'edge-relay-x', ...meta },
    status,
  });

  it('is every relay pod IP as a single-address CIDR, sorted, IPv4 first, without duplicates', () => {
    assert.deepEqual(
      relaySourcesOf([
        relay({ phase: 'Running', podIP: '10.88.0.20', podIPs: [{ ip: '10.88.0.20' }, { ip: 'fd00::20' }] }),
        relay({ phase: 'Running', podIP: '10.88.0.3' }),
        relay({ phase: 'Pending' }), // not scheduled or not started: no IP yet
        relay({ phase: 'Running', podIP: '10.88.0.3' }), // the same IP twice
        relay({ phase: 'Failed', podIP: '10.88.0.9' }), // stopped for good: sends nothing
        relay({ phase: 'Running', podIP: 'not-an-ip' }),
        relay({ phase: 'Running', podIP: '10.88.0.7' }, { deletionTimestamp: '2026-01-01T00:00:00Z' }),
      ]),
      ['10.88.0.3/32', '10.88.0.7/32', '10.88.0.20/32', 'fd00::20/128'],
    );
    assert.deepEqual(relaySourcesOf([]), []);
  });

  it('is published in the table; a replaced relay moves the generation, the same relays in another order do not', () => {
    const first = buildRoutingTable({
      ...base,
      relaySources: ['10.88.0.3/32', '10.88.0.4/32'],
      pods: [pod(1)],
    });
    assert.deepEqual((first.document as { relaySources: string[] }).relaySources, [
      '10.88.0.3/32',
      '10.88.0.4/32',
    ]);
    const same = buildRoutingTable({
      ...base,
      relaySources: relaySourcesOf([
        relay({ phase: 'Running', podIP: '10.88.0.4' }),
        relay({ phase: 'Running', podIP: '10.88.0.3' }),
      ]),
      pods: [pod(1)],
      published: first.table,
    });
    assert.equal(same.changed, false);
    assert.equal(same.table.generation, first.table.generation);
    const replaced = buildRoutingTable({
      ...base,
      relaySources: ['10.88.0.3/32', '10.88.0.5/32'],
      pods: [pod(1)],
      published: first.table,
    });
    assert.equal(replaced.changed, true);
    assert.equal(replaced.table.generation, first.table.generation + 1);
    assert.deepEqual((replaced.document as { relaySources: string[] }).relaySources, [
      '10.88.0.3/32',
      '10.88.0.5/32',
    ]);
  });
});
