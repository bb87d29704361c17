import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RoutingTable } from '../protocol/routing-table.ts';
import {
  planOwnedObjects,
  planRouting,
  type RoutingObservation,
  routingConflictNote,
} from './cluster-reconcile-plan.ts';
import { cluster, pod } from './test-support/fixtures.ts';

const OPERATOR = { namespace: 'voice-edge-system', podLabels: { app: 'operator' } };
const CREDENTIAL = { ok: true as const, token: 't', tokens: ['t'], hash: 'h' };

function table(generation: number, ids: number[]): RoutingTable {
  return {
    clusterId: 7,
    generation,
    transceivers: ids.map((id) => ({
      id,
      tunnel: { family: 4, address: `10.88.0.${id}`, port: 7000 },
      state: 'active',
    })),
    peers: [],
    edgeRelays: [],
    relaySources: [],
  };
}

function observed(fields: Partial<RoutingObservation> = {}): RoutingObservation {
  return {
    cluster: cluster(),
    pods: [],
    relayPods: [],
    cached: undefined,
    cachedVersion: undefined,
    lastWritten: undefined,
    ledgerExists: true,
    knownGeneration: 0,
    ...fields,
  };
}

describe('planOwnedObjects', () => {
  test('the NetworkPolicy is applied while enabled and deleted when disabled', () => {
    const input = {
      defaultImage: 'img',
      relayAddresses: ['203.0.113.1:3478'],
      credential: CREDENTIAL,
      operator: OPERATOR,
    };
    const enabled = planOwnedObjects({ ...input, cluster: cluster() });
    assert.equal(enabled.deleteNetworkPolicy, undefined);
    assert.ok(enabled.apply.some((object) => object.kind === 'NetworkPolicy'));
    const disabled = planOwnedObjects({ ...input, cluster: cluster({ networkPolicy: { enabled: false } }) });
    assert.equal(disabled.deleteNetworkPolicy, 'edge-transceiver');
    assert.ok(!disabled.apply.some((object) => object.kind === 'NetworkPolicy'));
  });
});

describe('planRouting', () => {
  test('builds on this term’s last write when the cache lags behind it, bound to its version', () => {
    const plan = planRouting(
      observed({
        pods: [pod(1), pod(2)],
        cached: table(3, [1]),
        cachedVersion: '100',
        lastWritten: { generation: 4, resourceVersion: '120', table: table(4, [1]) },
      }),
    );
    assert.equal(plan.base?.generation, 4);
    assert.equal(plan.result.table.generation, 5);
    assert.equal(plan.publish?.metadata.resourceVersion, '120');
    assert.equal(plan.publish?.metadata.name, 'edge-routing');
  });

  test('an unchanged table is not published; a missing ledger starts above every ID in use or listed', () => {
    const published = planRouting(observed({ pods: [pod(1)] })).result.table;
    const unchanged = planRouting(observed({ pods: [pod(1)], cached: published, cachedVersion: '100' }));
    assert.equal(unchanged.result.changed, false);
    assert.equal(unchanged.publish, undefined);
    assert.equal(unchanged.ledgerAbove, undefined);
    const noLedger = planRouting(observed({ pods: [pod(4)], cached: table(3, [9]), ledgerExists: false }));
    assert.equal(noLedger.ledgerAbove, 9);
  });

  test('a first table is created, not bound to a version', () => {
    const plan = planRouting(observed({ pods: [pod(1)], knownGeneration: 6 }));
    assert.equal(plan.base, undefined);
    assert.equal(plan.result.table.generation, 7);
    assert.equal(plan.publish?.metadata.resourceVersion, undefined);
  });
});

test('routingConflictNote: only when pods were left out', () => {
  assert.equal(routingConflictNote([]), undefined);
  assert.equal(
    routingConflictNote(['echo-3', 'echo-4']),
    'pods left out of the routing table because another pod holds their ID or address: echo-3, echo-4',
  );
});
