import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AutoscalerInput,
  type AutoscalingSpec,
  podsFor,
  type Recommendation,
  recommend,
} from './autoscaler.ts';

const spec: AutoscalingSpec = {
  minReplicas: 1,
  maxReplicas: 10,
  targetUtilizationPercent: 70,
  scaleDownStabilizationSeconds: 300,
};

function run(fields: Partial<AutoscalerInput>) {
  return recommend({
    spec,
    capacityPerPod: 50,
    currentReplicas: 2,
    knownSessions: 0,
    unknownPods: 0,
    history: [],
    now: 1_000_000,
    ...fields,
  });
}

describe('podsFor', () => {
  it('is ceil(sessions / (capacity × target)) without floating-point surprises', () => {
    assert.equal(podsFor(0, 50, 70), 0);
    assert.equal(podsFor(35, 50, 70), 1);
    assert.equal(podsFor(36, 50, 70), 2);
    assert.equal(podsFor(30, 100, 30), 1);
    assert.equal(podsFor(31, 100, 30), 2);
  });
});

describe('recommend', () => {
  it('scales up at once, clamped to maxReplicas', () => {
    assert.equal(run({ knownSessions: 100 }).replicas, 3);
    assert.equal(run({ knownSessions: 10_000 }).replicas, 10);
  });

  it('holds a scale-down until the window has seen nothing higher', () => {
    const t0 = 1_000_000;
    let history: readonly Recommendation[] = [{ at: t0, replicas: 4 }];
    const first = run({ currentReplicas: 4, knownSessions: 10, history, now: t0 + 1_000 });
    assert.equal(first.recommendation, 1);
    assert.equal(first.replicas, 4);
    assert.equal(first.recheckAt, t0 + 300_000);
    history = first.history;
    const later = run({ currentReplicas: 4, knownSessions: 10, history, now: t0 + 300_001 });
    assert.equal(later.replicas, 1);
    assert.equal(later.recheckAt, undefined);
  });

  it('steps down through the highest recommendation still in the window', () => {
    const t0 = 1_000_000;
    const history = [
      { at: t0, replicas: 5 },
      { at: t0 + 100_000, replicas: 3 },
    ];
    const decision = run({ currentReplicas: 5, knownSessions: 1, history, now: t0 + 300_001 });
    assert.equal(decision.replicas, 3);
    assert.equal(decision.recheckAt, t0 + 400_000);
  });

  it('treats silent transceivers as on target when scaling down and as empty when scaling up', () => {
    assert.equal(run({ currentReplicas: 3, knownSessions: 0, unknownPods: 3 }).recommendation, 3);
    assert.equal(run({ currentReplicas: 1, knownSessions: 40, unknownPods: 1 }).recommendation, 2);
  });

  it('clamps to minReplicas and brings replicas above maxReplicas down at once', () => {
    assert.equal(run({ currentReplicas: 0 }).replicas, 1);
    assert.equal(run({ currentReplicas: 0, spec: { ...spec, minReplicas: 0 } }).replicas, 0);
    assert.equal(
      run({ currentReplicas: 15, knownSessions: 1000, history: [{ at: 999_999, replicas: 15 }] }).replicas,
      10,
    );
  });

  it('keeps its history short however often it runs', () => {
    let history: readonly Recommendation[] = [];
    for (let i = 0; i < 1000; i++) {
      history = run({
        currentReplicas: 5,
        knownSessions: (i * 7919) % 300,
        history,
        now: 1_000_000 + i * 1000,
      }).history;
    }
    assert.ok(history.length <= 11, `history has ${history.length} entries`);
  });

  it('never goes below any recommendation of the window, never above max, never below min', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ sessions: fc.integer({ min: 0, max: 700 }), dt: fc.integer({ min: 0, max: 120_000 }) }),
          {
            maxLength: 40,
          },
        ),
        fc.integer({ min: 0, max: 600 }),
        (steps, windowSeconds) => {
          const s = { ...spec, scaleDownStabilizationSeconds: windowSeconds };
          let replicas = 2;
          let now = 0;
          let history: readonly Recommendation[] = [{ at: 0, replicas }];
          const seen: Recommendation[] = [{ at: 0, replicas }];
          for (const step of steps) {
            now += step.dt;
            const decision = run({
              spec: s,
              currentReplicas: replicas,
              knownSessions: step.sessions,
              history,
              now,
            });
            seen.push({ at: now, replicas: decision.recommendation });
            if (decision.replicas < replicas) {
              const windowMax = Math.max(
                ...seen.filter((r) => r.at > now - windowSeconds * 1000).map((r) => r.replicas),
              );
              assert.ok(decision.replicas >= Math.min(replicas, windowMax));
            }
            assert.ok(decision.replicas >= s.minReplicas && decision.replicas <= s.maxReplicas);
            replicas = decision.replicas;
            history = decision.history;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
