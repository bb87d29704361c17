import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideLease, type LeaseSpec, microTime } from './leader-election.ts';

const T = 1_800_000_000_000;

describe('decideLease', () => {
  it('creates a missing lease', () => {
    const decision = decideLease(undefined, undefined, 'me', 15, T);
    assert.deepEqual(decision, {
      kind: 'write',
      transition: false,
      spec: {
        holderIdentity: 'me',
        leaseDurationSeconds: 15,
        acquireTime: microTime(T),
        renewTime: microTime(T),
        leaseTransitions: 0,
      },
    });
  });

  it('renews its own lease, keeping the acquire time', () => {
    const mine: LeaseSpec = {
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: 'a',
      renewTime: 'r',
      leaseTransitions: 2,
    };
    const decision = decideLease(mine, undefined, 'me', 15, T);
    assert.equal(decision.kind, 'write');
    if (decision.kind === 'write') {
      assert.equal(decision.spec.acquireTime, 'a');
      assert.equal(decision.spec.renewTime, microTime(T));
      assert.equal(decision.spec.leaseTransitions, 2);
    }
  });

  it("leaves another's lease alone until it has stood unrenewed for a lease duration by the local clock", () => {
    const theirs: LeaseSpec = {
      holderIdentity: 'other',
      leaseDurationSeconds: 15,
      renewTime: microTime(0),
      leaseTransitions: 4,
    };
    // Their renewTime is ancient, but this candidate only just saw the record: no clock comparison.
    const fresh = decideLease(theirs, undefined, 'me', 15, T);
    assert.deepEqual(fresh, { kind: 'held', holder: 'other', expiresAt: T + 15_000 });
    const observation = { record: JSON.stringify(theirs), at: T };
    assert.equal(decideLease(theirs, observation, 'me', 15, T + 14_999).kind, 'held');
    const takeover = decideLease(theirs, observation, 'me', 15, T + 15_000);
    assert.equal(takeover.kind, 'write');
    if (takeover.kind === 'write') {
      assert.equal(takeover.transition, true);
      assert.equal(takeover.spec.holderIdentity, 'me');
      assert.equal(takeover.spec.leaseTransitions, 5);
    }
  });

  it('takes a released lease (no holder) at once', () => {
    const released: LeaseSpec = { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 1 };
    const decision = decideLease(released, undefined, 'me', 15, T);
    assert.equal(decision.kind, 'write');
  });

  it('writes MicroTime with microseconds', () => {
    assert.equal(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05.678000Z');
  });
});
