import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ObservedTransceiverPod } from './observed-transceiver-pod.ts';
import { type PoolPlanInput, planPool } from './pool-plan.ts';
import type { StatusSample } from './status-sample.ts';
import { pod } from './test-support/fixtures.ts';

const NOW = 1_800_000_000;

function input(fields: Partial<PoolPlanInput>): PoolPlanInput {
  return {
    replicas: 2,
    drainTimeoutSeconds: 600,
    templateHash: 'current',
    pods: [],
    samples: new Map(),
    publishedDraining: new Set(),
    canCreate: true,
    now: NOW,
    ...fields,
  };
}

const sample = (sessions: number, state: 'active' | 'draining' = 'active'): StatusSample => ({
  sessions,
  capacity: 50,
  state,
  at: NOW * 1000,
});

const names = (pods: readonly ObservedTransceiverPod[]) => pods.map((p) => p.name);

describe('planPool: scaling', () => {
  it('creates the missing pods, and none while it cannot', () => {
    assert.equal(planPool(input({ replicas: 3, pods: [pod(1)] })).create, 2);
    assert.equal(planPool(input({ replicas: 3, pods: [pod(1)], canCreate: false })).create, 0);
  });

  it('does not count draining, terminating or finished pods as replicas', () => {
    const plan = planPool(
      input({
        replicas: 2,
        pods: [
          pod(1, { draining: true, drainingSince: NOW }),
          pod(2, { terminating: true }),
          pod(3, { phase: 'Failed' }),
        ],
      }),
    );
    assert.equal(plan.create, 2);
    assert.deepEqual(
      plan.delete.map((d) => [d.pod.name, d.reason]),
      [['echo-3', 'finished']],
    );
    assert.equal(plan.status.replicas, 0);
    assert.equal(plan.status.drainingReplicas, 1);
  });

  it('drains not-ready pods first, then the fewest sessions, then the highest ID', () => {
    const pods = [pod(1), pod(2), pod(3), pod(4), pod(5, { ready: false })];
    const samples = new Map([
      ['echo-1', sample(4)],
      ['echo-2', sample(0)],
      ['echo-3', sample(0)],
      ['echo-4', sample(9)],
    ]);
    assert.deepEqual(names(planPool(input({ replicas: 4, pods, samples })).drain), ['echo-5']);
    assert.deepEqual(names(planPool(input({ replicas: 2, pods, samples })).drain), [
      'echo-5',
      'echo-3',
      'echo-2',
    ]);
    assert.deepEqual(names(planPool(input({ replicas: 0, pods, samples })).drain), [
      'echo-5',
      'echo-3',
      'echo-2',
      'echo-1',
      'echo-4',
    ]);
  });

  it('drains a ready pod whose sessions are unknown last', () => {
    const plan = planPool(
      input({ replicas: 1, pods: [pod(1), pod(2)], samples: new Map([['echo-1', sample(30)]]) }),
    );
    assert.deepEqual(names(plan.drain), ['echo-1']);
  });

  it('replaces pods of an old template: new ones first, old ones drain once they are ready', () => {
    const old = [pod(1, { templateHash: 'old' }), pod(2, { templateHash: 'old' })];
    const first = planPool(input({ replicas: 2, pods: old }));
    assert.equal(first.create, 2);
    assert.deepEqual(first.drain, []);
    const starting = planPool(input({ replicas: 2, pods: [...old, pod(3), pod(4, { ready: false })] }));
    assert.equal(starting.create, 0);
    assert.deepEqual(starting.drain, []);
    const ready = planPool(input({ replicas: 2, pods: [...old, pod(3), pod(4)] }));
    assert.deepEqual(names(ready.drain), ['echo-1', 'echo-2']);
  });
});

describe('planPool: draining', () => {
  const draining = (id: number, since = NOW - 10, fields: Partial<ObservedTransceiverPod> = {}) =>
    pod(id, { draining: true, drainingSince: since, ...fields });

  it('waits for the routing table before telling the transceiver', () => {
    const plan = planPool(input({ replicas: 0, pods: [draining(1)] }));
    assert.deepEqual(plan.notifyDrain, []);
    assert.deepEqual(plan.delete, []);
    assert.equal(plan.wakeAt, NOW - 10 + 600);
  });

  it('tells a published draining transceiver until it says it drains', () => {
    const published = new Set([1]);
    const unknown = planPool(input({ replicas: 0, pods: [draining(1)], publishedDraining: published }));
    assert.deepEqual(names(unknown.notifyDrain), ['echo-1']);
    const active = planPool(
      input({
        replicas: 0,
        pods: [draining(1)],
        publishedDraining: published,
        samples: new Map([['echo-1', sample(0, 'active')]]),
      }),
    );
    assert.deepEqual(names(active.notifyDrain), ['echo-1']);
    assert.deepEqual(active.delete, [], 'an active transceiver with 0 sessions may take one any moment');
  });

  it('deletes a pod that drains with no sessions left, keeps one with calls', () => {
    const published = new Set([1, 2]);
    const plan = planPool(
      input({
        replicas: 0,
        pods: [draining(1), draining(2)],
        publishedDraining: published,
        samples: new Map([
          ['echo-1', sample(0, 'draining')],
          ['echo-2', sample(3, 'draining')],
        ]),
      }),
    );
    assert.deepEqual(
      plan.delete.map((d) => [d.pod.name, d.reason]),
      [['echo-1', 'drained']],
    );
    assert.deepEqual(plan.notifyDrain, []);
  });

  it('deletes at the drain timeout whatever the sessions, and at once a pod that never had an address', () => {
    const plan = planPool(
      input({
        replicas: 0,
        drainTimeoutSeconds: 60,
        pods: [draining(1, NOW - 60), draining(2, NOW - 59), draining(3, NOW, { podIP: undefined })],
        samples: new Map([
          ['echo-1', sample(9, 'draining')],
          ['echo-2', sample(9, 'draining')],
        ]),
      }),
    );
    assert.deepEqual(
      plan.delete.map((d) => [d.pod.name, d.reason]),
      [
        ['echo-1', 'drain-timeout'],
        ['echo-3', 'no-address'],
      ],
    );
    assert.equal(plan.wakeAt, NOW + 1);
  });

  it('stamps a draining pod whose annotation is unreadable again', () => {
    const plan = planPool(
      input({ replicas: 0, pods: [pod(1, { draining: true, drainingSince: undefined })] }),
    );
    assert.deepEqual(names(plan.restamp), ['echo-1']);
    assert.deepEqual(plan.delete, []);
  });
});

describe('planPool: status', () => {
  it('sums known sessions, counts unknown ones, lists transceivers by ID', () => {
    const plan = planPool(
      input({
        replicas: 2,
        pods: [
          pod(2),
          pod(1, { ready: false }),
          pod(3, { draining: true, drainingSince: NOW }),
          pod(4, { terminating: true }),
        ],
        samples: new Map([
          ['echo-2', sample(5)],
          ['echo-3', sample(2, 'draining')],
        ]),
      }),
    );
    assert.deepEqual(plan.status, {
      replicas: 2,
      readyReplicas: 1,
      updatedReplicas: 2,
      drainingReplicas: 1,
      sessions: 7,
      unknownSessions: 1,
      transceivers: [
        { id: 1, pod: 'echo-1', state: 'active', ready: false, sessions: 0 },
        { id: 2, pod: 'echo-2', state: 'active', ready: true, sessions: 5 },
        { id: 3, pod: 'echo-3', state: 'draining', ready: true, sessions: 2 },
      ],
    });
  });
});

describe('planPool: properties', () => {
  const podArbitrary = fc
    .record({
      id: fc.integer({ min: 1, max: 40 }),
      draining: fc.boolean(),
      since: fc.integer({ min: NOW - 1000, max: NOW }),
      ready: fc.boolean(),
      hasIp: fc.boolean(),
      terminating: fc.boolean(),
      phase: fc.constantFrom('Pending', 'Running', 'Running', 'Failed'),
      old: fc.boolean(),
      sessions: fc.option(fc.integer({ min: 0, max: 5 })),
      reported: fc.constantFrom('active' as const, 'draining' as const),
      published: fc.boolean(),
    })
    .map((p) => ({
      pod: pod(p.id, {
        draining: p.draining,
        drainingSince: p.draining ? p.since : undefined,
        ready: p.ready,
        podIP: p.hasIp ? `10.88.1.${p.id}` : undefined,
        terminating: p.terminating,
        phase: p.phase,
        templateHash: p.old ? 'old' : 'current',
      }),
      sessions: p.sessions,
      reported: p.reported,
      published: p.published,
    }));
  const scenario = fc.record({
    replicas: fc.integer({ min: 0, max: 6 }),
    timeout: fc.integer({ min: 0, max: 2000 }),
    pods: fc.uniqueArray(podArbitrary, { maxLength: 12, selector: (p) => p.pod.id }),
  });

  it('never deletes a running pod that may still carry a call before its drain timeout', () => {
    fc.assert(
      fc.property(scenario, ({ replicas, timeout, pods }) => {
        const samples = new Map<string, StatusSample>();
        for (const p of pods)
          if (p.sessions !== null) samples.set(p.pod.name, sample(p.sessions, p.reported));
        const plan = planPool(
          input({
            replicas,
            drainTimeoutSeconds: timeout,
            pods: pods.map((p) => p.pod),
            samples,
            publishedDraining: new Set(pods.filter((p) => p.published).map((p) => p.pod.id)),
          }),
        );
        for (const { pod: victim, reason } of plan.delete) {
          if (victim.phase === 'Failed') continue;
          assert.ok(victim.draining, `${victim.name} deleted without draining (${reason})`);
          assert.ok(!victim.terminating);
          const s = samples.get(victim.name);
          const timedOut = NOW >= victim.drainingSince! + timeout;
          const provablyIdle =
            s?.state === 'draining' && s.sessions === 0 && pods.find((p) => p.pod === victim)!.published;
          assert.ok(timedOut || provablyIdle || victim.podIP === undefined, `${victim.name}: ${reason}`);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('converges: carrying out the plan again and again ends with exactly `replicas` current active pods', () => {
    fc.assert(
      fc.property(scenario, ({ replicas, timeout, pods: start }) => {
        let pods = start.map((p) => p.pod);
        let nextId = 100;
        let now = NOW;
        for (let round = 0; round < 20; round++) {
          const published = new Set(pods.filter((p) => p.draining).map((p) => p.id));
          // Every transceiver answers at once, drains when told and its calls end.
          const samples = new Map(pods.map((p) => [p.name, sample(0, p.draining ? 'draining' : 'active')]));
          const plan = planPool(
            input({
              replicas,
              drainTimeoutSeconds: timeout,
              pods,
              samples,
              publishedDraining: published,
              now,
            }),
          );
          const gone = new Set(plan.delete.map((d) => d.pod.name));
          const draining = new Set(plan.drain.map((p) => p.name));
          pods = pods
            .filter((p) => !gone.has(p.name) && !p.terminating)
            .map((p) =>
              draining.has(p.name) || plan.restamp.includes(p)
                ? { ...p, draining: true, drainingSince: now }
                : p,
            )
            .map((p) => ({ ...p, ready: true, podIP: p.podIP ?? `10.88.2.${p.id}` }));
          for (let i = 0; i < plan.create; i++) pods.push(pod(nextId++));
          now += 1;
        }
        const active = pods.filter((p) => !p.draining);
        assert.equal(active.length, replicas);
        assert.ok(active.every((p) => p.templateHash === 'current'));
        assert.equal(pods.length, replicas, 'every draining pod is gone');
      }),
      { numRuns: 300 },
    );
  });
});

describe('planPool: no template to compare with', () => {
  it('counts every active pod as current while pods cannot be built', () => {
    const plan = planPool(
      input({
        replicas: 2,
        templateHash: undefined,
        canCreate: false,
        pods: [pod(1, { templateHash: 'x' }), pod(2)],
      }),
    );
    assert.deepEqual(plan.drain, []);
    assert.equal(plan.status.updatedReplicas, 2);
  });
});
