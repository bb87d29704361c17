import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { allocateIds, IdSpaceExhaustedError, MAX_ID, readLedgerNext } from './id-ledger.ts';

describe('allocateIds', () => {
  it('starts at 1 and moves the ledger past what it hands out', () => {
    assert.deepEqual(allocateIds(undefined, 0, 3), { ids: [1, 2, 3], next: 4 });
    assert.deepEqual(allocateIds(4, 3, 1), { ids: [4], next: 5 });
    assert.deepEqual(allocateIds(9, 0, 0), { ids: [], next: 9 });
  });

  it('never goes below an ID a pod carries (a lost or edited ledger)', () => {
    assert.deepEqual(allocateIds(undefined, 41, 2), { ids: [42, 43], next: 44 });
    assert.deepEqual(allocateIds(3, 41, 1), { ids: [42], next: 43 });
  });

  it('refuses to pass the 32-bit ID space', () => {
    assert.deepEqual(allocateIds(MAX_ID, 0, 1).ids, [MAX_ID]);
    assert.throws(() => allocateIds(MAX_ID, 0, 2), IdSpaceExhaustedError);
    assert.throws(() => allocateIds(1, 0, -1), RangeError);
  });
});

describe('readLedgerNext', () => {
  it('reads a decimal ≥ 1 and nothing else', () => {
    assert.equal(readLedgerNext({ next: '12' }), 12);
    assert.equal(readLedgerNext({ next: ' 12\n' }), 12);
    for (const bad of ['0', '-3', 'x', '1e3', '', '99999999999'])
      assert.equal(readLedgerNext({ next: bad }), undefined, bad);
    assert.equal(readLedgerNext(undefined), undefined);
    assert.equal(readLedgerNext({}), undefined);
  });
});

// The whole allocation protocol in pure code: a CAS-guarded ledger, pods, and operators that read
// the ledger and the pods (possibly stale), allocate, create pods, delete pods, and crash at any
// step. Whatever happens, no ID is ever carried by two pods over the cluster's life; and if the
// ledger itself is lost (deleted by hand), no ID is carried by two live pods at once.
describe('allocation survives crashes and restarts', () => {
  type Step =
    | { kind: 'allocate'; operator: number; count: number; crashAfterCas: boolean; createOnly: number }
    | { kind: 'delete'; index: number }
    | { kind: 'staleRead'; operator: number }
    | { kind: 'restart'; operator: number }
    | { kind: 'loseLedger' };

  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant('allocate' as const),
      operator: fc.integer({ min: 0, max: 2 }),
      count: fc.integer({ min: 1, max: 4 }),
      crashAfterCas: fc.boolean(),
      createOnly: fc.integer({ min: 0, max: 4 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), index: fc.nat() }),
    fc.record({ kind: fc.constant('staleRead' as const), operator: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ kind: fc.constant('restart' as const), operator: fc.integer({ min: 0, max: 2 }) }),
    fc.constant({ kind: 'loseLedger' as const }),
  );

  function simulate(steps: readonly Step[], reusedIdIsFailure: boolean, compareAndSwap = true): boolean {
    let ledger: { next: number; version: number } | undefined;
    let version = 0;
    const pods = new Set<number>();
    const everCarried = new Set<number>();
    // What each operator last read: the ledger may be stale by the time it writes.
    const views: ({ next: number | undefined; version: number | undefined } | undefined)[] = [];
    const read = () => ({ next: ledger?.next, version: ledger?.version });
    const highest = () => Math.max(0, ...pods);
    for (const s of steps) {
      if (s.kind === 'staleRead') views[s.operator] = read();
      else if (s.kind === 'restart') views[s.operator] = undefined;
      else if (s.kind === 'loseLedger') ledger = undefined;
      else if (s.kind === 'delete') {
        const list = [...pods];
        if (list.length > 0) pods.delete(list[s.index % list.length]!);
      } else {
        const view = views[s.operator] ?? read();
        views[s.operator] = undefined;
        const allocation = allocateIds(view.next, highest(), s.count);
        // CAS: the write succeeds only if the ledger is still the version that was read.
        if (compareAndSwap && ledger?.version !== view.version) continue;
        ledger = { next: allocation.next, version: ++version };
        if (s.crashAfterCas) continue;
        for (const id of allocation.ids.slice(0, s.createOnly)) {
          if (pods.has(id)) return false;
          if (reusedIdIsFailure && everCarried.has(id)) return false;
          everCarried.add(id);
          pods.add(id);
        }
      }
    }
    return true;
  }

  it('never hands one ID to two pods while the ledger lives', () => {
    const keepsLedger = fc
      .array(step, { maxLength: 60 })
      .map((steps) => steps.filter((s) => s.kind !== 'loseLedger'));
    fc.assert(
      fc.property(keepsLedger, (steps) => simulate(steps, true)),
      { numRuns: 500 },
    );
  });

  it("never gives a live pod's ID to another when the ledger is lost", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => simulate(steps, false)),
      { numRuns: 500 },
    );
  });

  it('catches a broken protocol: without the CAS two operators hand out one ID', () => {
    const keepsLedger = fc
      .array(step, { maxLength: 60 })
      .map((steps) => steps.filter((s) => s.kind !== 'loseLedger'));
    assert.throws(() =>
      fc.assert(
        fc.property(keepsLedger, (steps) => simulate(steps, true, false)),
        {
          numRuns: 200,
          // Operator 0 reads the ledger; operator 1 allocates ID 1, its pod comes and goes; operator
          // 0 then writes from its stale read.
          examples: [
            [
              [
                { kind: 'staleRead', operator: 0 },
                { kind: 'allocate', operator: 1, count: 1, crashAfterCas: false, createOnly: 1 },
                { kind: 'delete', index: 0 },
                { kind: 'allocate', operator: 0, count: 1, crashAfterCas: false, createOnly: 1 },
              ],
            ],
          ],
        },
      ),
    );
  });
});
