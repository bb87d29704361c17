import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { templateHash } from './desired/transceiver-pod.ts';
import {
  type PoolObservation,
  planPods,
  planScale,
  poolBlocker,
  scalingDownEvent,
  scalingUpEvent,
} from './pool-reconcile-plan.ts';
import { cluster, pod, pool } from './test-support/fixtures.ts';

const NOW = 1_800_000_000_000;
const CREDENTIAL = { ok: true as const, token: 't', tokens: ['t'], hash: 'h' };

function observed(fields: Partial<PoolObservation> = {}): PoolObservation {
  return {
    namespace: 'voice',
    name: 'echo',
    pool: pool({ replicas: 2 }),
    deleting: false,
    cluster: { kind: 'found', cluster: cluster() },
    relayAddresses: ['203.0.113.1:3478'],
    credential: CREDENTIAL,
    defaultImage: 'voice-edge:test',
    pods: [],
    samples: new Map(),
    publishedDraining: new Set(),
    publishedActive: new Set(),
    history: undefined,
    now: NOW,
    ...fields,
  };
}

/** Pods built from the template the observation's pool and cluster give. */
function currentPods(...ids: number[]) {
  const input = { pool: pool({ replicas: 2 }), cluster: cluster(), defaultImage: 'voice-edge:test' };
  const hash = templateHash({ ...input, relayAddresses: ['203.0.113.1:3478'], apiTokensHash: 'h' });
  return ids.map((id) => pod(id, { templateHash: hash }));
}

describe('poolBlocker', () => {
  test('names the first thing that keeps pods from being built', () => {
    assert.equal(poolBlocker(observed()), undefined);
    assert.deepEqual(poolBlocker(observed({ cluster: { kind: 'missing' } })), {
      reason: 'ClusterNotFound',
      message: 'no VoiceEdgeCluster edge in namespace voice',
    });
    assert.deepEqual(
      poolBlocker(observed({ cluster: { kind: 'invalid', error: 'bad' }, relayAddresses: [] })),
      {
        reason: 'ClusterInvalid',
        message: 'VoiceEdgeCluster edge: bad',
      },
    );
    assert.equal(poolBlocker(observed({ relayAddresses: [] }))?.reason, 'RelayAddressesUnknown');
    assert.deepEqual(poolBlocker(observed({ credential: { ok: false, error: 'no Secret' } })), {
      reason: 'TransceiverApiCredentialUnavailable',
      message: 'no Secret',
    });
  });
});

describe('planScale', () => {
  test('none without autoscaling or while deleting', () => {
    assert.equal(planScale(observed()), undefined);
    const autoscaled = pool({ replicas: 2, autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 5 } });
    assert.equal(planScale(observed({ pool: autoscaled, deleting: true })), undefined);
  });

  test('a change of replicas is a /scale write with the Event that reports it', () => {
    const autoscaled = pool({
      replicas: 1,
      capacityPerPod: 10,
      autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 5, targetUtilizationPercent: 50 },
    });
    const pods = [pod(1), pod(2, { podIP: undefined })];
    const scale = planScale(
      observed({
        pool: autoscaled,
        pods,
        samples: new Map([['echo-1', { sessions: 9, capacity: 10, state: 'active', at: NOW }]]),
      }),
    );
    assert.ok(scale?.change);
    assert.equal(scale.change.replicas, scale.replicas);
    assert.ok(scale.replicas > 1);
    assert.equal(scale.change.event.reason, 'ScaledUp');
    assert.equal(
      scale.change.event.note,
      `autoscaler: replicas 1 → ${scale.replicas} (9 sessions, 1 transceivers not reporting; target 50% of 10 per transceiver)`,
    );
    assert.deepEqual(scale.history.at(-1), { at: NOW, replicas: scale.replicas });
  });
});

describe('planPods', () => {
  test('while blocked nothing is created, and the blocker is kept for the status', () => {
    const plan = planPods(
      observed({ cluster: { kind: 'missing' }, relayAddresses: [], credential: undefined }),
      2,
    );
    assert.equal(plan.podInput, undefined);
    assert.equal(plan.plan.create, 0);
    assert.equal(plan.blocked?.reason, 'ClusterNotFound');
  });

  test('a scale-down drains the surplus with DrainStarted Events; unpublished ready pods are counted', () => {
    const plan = planPods(observed({ pods: currentPods(1, 2, 3), publishedActive: new Set([1, 2]) }), 2);
    assert.equal(plan.drains.length, 1);
    const [drain] = plan.drains;
    assert.equal(drain?.scaleDown, true);
    assert.equal(
      drain?.event.note,
      `transceiver ${drain?.pod.id} (pod ${drain?.pod.name}) draining: scale-down to 2 replicas; no new sessions, deleted when its calls end`,
    );
    assert.equal(plan.unpublished, 1);
  });

  test('while the pool is deleted every pod drains, not for a scale-down', () => {
    const plan = planPods(observed({ deleting: true, pods: currentPods(1, 2) }), 0);
    assert.equal(plan.plan.create, 0);
    assert.deepEqual(
      plan.drains
        .map((drain) => [drain.pod.id, drain.scaleDown, drain.event.note.split(': ')[1]])
        .toSorted((a, b) => Number(a[0]) - Number(b[0])),
      [
        [1, false, 'the pool is being deleted; no new sessions, deleted when its calls end'],
        [2, false, 'the pool is being deleted; no new sessions, deleted when its calls end'],
      ],
    );
  });

  test('a drained pod is deleted with a DrainFinished Event', () => {
    const [drained] = currentPods(4).map((p) => ({ ...p, draining: true, drainingSince: NOW / 1000 - 10 }));
    const plan = planPods(
      observed({
        pods: [...currentPods(1, 2), drained!],
        samples: new Map([['echo-4', { sessions: 0, capacity: 10, state: 'draining', at: NOW }]]),
        publishedDraining: new Set([4]),
      }),
      2,
    );
    assert.deepEqual(
      plan.deletes.map(({ pod, event }) => [pod.id, event.reason, event.note]),
      [[4, 'DrainFinished', 'transceiver 4 (pod echo-4) drained: no sessions left, pod deleted']],
    );
  });
});

describe('scaling Events', () => {
  test('only for something done', () => {
    assert.equal(scalingDownEvent([], 2), undefined);
    assert.equal(scalingUpEvent([], 2), undefined);
    assert.equal(
      scalingDownEvent([pod(3), pod(5)], 2)?.note,
      'draining 2 transceivers (IDs 3, 5) for 2 replicas',
    );
    assert.equal(scalingUpEvent([6, 7], 4)?.note, 'created 2 transceivers (IDs 6, 7) for 4 replicas');
  });
});
