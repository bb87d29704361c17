import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTime, mergeConditions } from './conditions.ts';

const t0 = new Date('2026-01-02T03:04:05.678Z');
const t1 = new Date('2026-01-02T03:09:00.000Z');

describe('mergeConditions', () => {
  it('stamps new conditions with now, whole seconds, and the observed generation', () => {
    const merged = mergeConditions(
      undefined,
      [{ type: 'Ready', status: 'False', reason: 'Starting', message: 'm' }],
      4,
      t0,
    );
    assert.deepEqual(merged, [
      {
        type: 'Ready',
        status: 'False',
        observedGeneration: 4,
        lastTransitionTime: '2026-01-02T03:04:05Z',
        reason: 'Starting',
        message: 'm',
      },
    ]);
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    const first = mergeConditions(
      undefined,
      [{ type: 'Ready', status: 'False', reason: 'A', message: 'a' }],
      1,
      t0,
    );
    const second = mergeConditions(
      first,
      [{ type: 'Ready', status: 'False', reason: 'B', message: 'b' }],
      2,
      t1,
    );
    assert.equal(second[0]!.lastTransitionTime, formatTime(t0));
    assert.equal(second[0]!.reason, 'B');
    assert.equal(second[0]!.observedGeneration, 2);
  });

  it('moves lastTransitionTime when the status changes', () => {
    const first = mergeConditions(
      undefined,
      [{ type: 'Ready', status: 'False', reason: 'A', message: '' }],
      1,
      t0,
    );
    const second = mergeConditions(
      first,
      [{ type: 'Ready', status: 'True', reason: 'A', message: '' }],
      1,
      t1,
    );
    assert.equal(second[0]!.lastTransitionTime, formatTime(t1));
  });

  it("keeps conditions of other types (someone else's) after its own", () => {
    const foreign = {
      type: 'Audited',
      status: 'True' as const,
      lastTransitionTime: 'x',
      reason: 'R',
      message: '',
    };
    const merged = mergeConditions(
      [foreign],
      [{ type: 'Ready', status: 'True', reason: 'R', message: '' }],
      1,
      t0,
    );
    assert.deepEqual(
      merged.map((condition) => condition.type),
      ['Ready', 'Audited'],
    );
  });
});
