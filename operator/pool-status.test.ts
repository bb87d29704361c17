import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PoolPlanStatus } from './pool-plan.ts';
import { type PoolStatusInput, poolConditions } from './pool-status.ts';

const steady: PoolPlanStatus = {
  replicas: 2,
  readyReplicas: 2,
  updatedReplicas: 2,
  drainingReplicas: 0,
  sessions: 3,
  unknownSessions: 0,
  transceivers: [],
};
const base: PoolStatusInput = {
  invalidSpec: undefined,
  deleting: false,
  blocked: undefined,
  writeError: undefined,
  replicas: 2,
  status: steady,
  unpublished: 0,
};
const byType = (input: PoolStatusInput) =>
  Object.fromEntries(poolConditions(input).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('poolConditions', () => {
  it('is Ready and Stable when the wanted transceivers are ready and published', () => {
    assert.deepEqual(byType(base), {
      Ready: 'True/TransceiversReady',
      Progressing: 'False/Stable',
      Degraded: 'False/AsExpected',
    });
  });

  it('progresses while scaling, rolling, starting and draining', () => {
    assert.deepEqual(byType({ ...base, replicas: 3 }), {
      Ready: 'False/TransceiversNotReady',
      Progressing: 'True/ScalingUp',
      Degraded: 'False/AsExpected',
    });
    assert.equal(byType({ ...base, replicas: 1 }).Progressing, 'True/ScalingDown');
    assert.equal(
      byType({ ...base, status: { ...steady, updatedReplicas: 1 } }).Progressing,
      'True/RollingUpdate',
    );
    assert.equal(
      byType({ ...base, status: { ...steady, readyReplicas: 1 } }).Progressing,
      'True/WaitingForReadiness',
    );
    assert.deepEqual(byType({ ...base, status: { ...steady, drainingReplicas: 1 } }), {
      Ready: 'True/TransceiversReady',
      Progressing: 'True/Draining',
      Degraded: 'False/AsExpected',
    });
  });

  it('is not Ready until the routing table lists its transceivers', () => {
    assert.equal(byType({ ...base, unpublished: 1 }).Ready, 'False/NotPublished');
  });

  it('is Degraded while blocked or failing, and says so', () => {
    const blocked = poolConditions({
      ...base,
      status: { ...steady, replicas: 0, readyReplicas: 0, updatedReplicas: 0 },
      blocked: { reason: 'ClusterNotFound', message: 'no VoiceEdgeCluster edge' },
    });
    assert.deepEqual(
      blocked.map((c) => `${c.type}=${c.status}/${c.reason}`),
      ['Ready=False/ClusterNotFound', 'Progressing=True/ScalingUp', 'Degraded=True/ClusterNotFound'],
    );
    assert.equal(byType({ ...base, writeError: 'create echo-3: forbidden' }).Degraded, 'True/WriteFailed');
    assert.equal(byType({ ...base, invalidSpec: 'spec.replicas: -1' }).Ready, 'False/InvalidSpec');
  });

  it('is never Ready while being deleted', () => {
    assert.deepEqual(byType({ ...base, deleting: true }), {
      Ready: 'False/Deleting',
      Progressing: 'True/Deleting',
      Degraded: 'False/AsExpected',
    });
  });
});
