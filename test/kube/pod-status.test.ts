import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ContainerRecord,
  podPhase,
  podStatus,
  restartDelayMs,
  shouldRestart,
  time,
} from './pod-status.ts';

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function container(partial: Partial<ContainerRecord>): ContainerRecord {
  return {
    name: 'c',
    image: 'ghcr.io/voice-edge/voice-edge:dev',
    state: { kind: 'waiting', reason: 'ContainerCreating' },
    restartCount: 0,
    ready: false,
    willRestart: true,
    ...partial,
  };
}

const exited = (exitCode: number) =>
  ({
    kind: 'terminated',
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: t0,
    finishedAt: t0 + 1000,
  }) as const;

describe('podPhase', () => {
  test('Pending until a container started; Running while one runs or will restart', () => {
    assert.equal(podPhase([]), 'Pending');
    assert.equal(podPhase([container({})]), 'Pending');
    assert.equal(podPhase([container({ state: { kind: 'running', startedAt: t0 } })]), 'Running');
    assert.equal(
      podPhase([
        container({ state: { kind: 'waiting', reason: 'CrashLoopBackOff' }, lastTermination: exited(1) }),
      ]),
      'Running',
    );
  });

  test('Succeeded when every container exited 0 for good, Failed when one did not', () => {
    assert.equal(podPhase([container({ state: exited(0), willRestart: false })]), 'Succeeded');
    assert.equal(
      podPhase([
        container({ state: exited(0), willRestart: false }),
        container({ state: exited(2), willRestart: false }),
      ]),
      'Failed',
    );
    assert.equal(
      podPhase([
        container({ state: exited(0), willRestart: false }),
        container({ state: { kind: 'running', startedAt: t0 } }),
      ]),
      'Running',
    );
  });
});

test('restart policy and back-off', () => {
  assert.equal(shouldRestart('Always', 0), true);
  assert.equal(shouldRestart('OnFailure', 0), false);
  assert.equal(shouldRestart('OnFailure', 1), true);
  assert.equal(shouldRestart('Never', 1), false);
  assert.deepEqual(
    [0, 1, 2, 5, 6, 20].map((n) => restartDelayMs(n, 100)),
    [1000, 2000, 4000, 32_000, 60_000, 60_000],
  );
  assert.equal(restartDelayMs(9, 60_000), 1000);
});

describe('podStatus', () => {
  test('a running, ready pod: IPs, conditions, container status', () => {
    const status = podStatus({
      podUid: 'uid1',
      podIP: '10.88.0.5',
      hostIP: '10.88.0.1',
      startTime: t0,
      initialized: true,
      containers: [
        container({
          state: { kind: 'running', startedAt: t0 + 1500 },
          ready: true,
          restartCount: 2,
          lastTermination: exited(1),
        }),
      ],
      previousConditions: [{ type: 'Ready', status: 'False', lastTransitionTime: '2026-01-01T11:00:00Z' }],
      now: t0 + 5000,
    });
    assert.equal(status.phase, 'Running');
    assert.equal(status.podIP, '10.88.0.5');
    assert.deepEqual(status.podIPs, [{ ip: '10.88.0.5' }]);
    assert.equal(status.startTime, '2026-01-01T12:00:00Z');
    const conditions = status.conditions as Array<Record<string, unknown>>;
    assert.deepEqual(
      conditions.map((c) => [c.type, c.status, c.lastTransitionTime]),
      [
        ['PodReadyToStartContainers', 'True', '2026-01-01T12:00:05Z'],
        ['Initialized', 'True', '2026-01-01T12:00:05Z'],
        ['Ready', 'True', '2026-01-01T12:00:05Z'],
        ['ContainersReady', 'True', '2026-01-01T12:00:05Z'],
        ['PodScheduled', 'True', '2026-01-01T12:00:05Z'],
      ],
    );
    const c = (status.containerStatuses as Array<Record<string, unknown>>)[0]!;
    assert.deepEqual(c.state, { running: { startedAt: '2026-01-01T12:00:01Z' } });
    assert.equal(c.restartCount, 2);
    assert.equal(c.ready, true);
    assert.equal((c.lastState as { terminated: { exitCode: number } }).terminated.exitCode, 1);
  });

  test('an unchanged condition keeps its transition time; a not-ready pod says why', () => {
    const status = podStatus({
      podUid: 'uid1',
      podIP: undefined,
      hostIP: '10.88.0.1',
      startTime: t0,
      initialized: false,
      containers: [container({ state: { kind: 'waiting', reason: 'ErrImagePull', message: 'nope' } })],
      previousConditions: [{ type: 'Ready', status: 'False', lastTransitionTime: new Date(t0 - 60_000) }],
      now: t0 + 5000,
    });
    assert.equal(status.phase, 'Pending');
    assert.equal(status.podIP, undefined);
    const ready = (status.conditions as Array<Record<string, unknown>>).find((c) => c.type === 'Ready');
    assert.deepEqual(ready, {
      type: 'Ready',
      status: 'False',
      lastProbeTime: null,
      lastTransitionTime: time(t0 - 60_000),
      reason: 'ContainersNotReady',
    });
    const [c] = status.containerStatuses as Array<Record<string, unknown>>;
    assert.deepEqual(c?.state, { waiting: { reason: 'ErrImagePull', message: 'nope' } });
  });
});
