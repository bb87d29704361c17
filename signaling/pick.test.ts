import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TransceiverEntry } from '../protocol/routing-table.ts';
import { describeSkipped, rankTransceivers, type StatusView } from './pick.ts';

function entry(id: number, extra: Partial<TransceiverEntry> = {}): TransceiverEntry {
  return {
    id,
    tunnel: { family: 4, address: '10.0.0.1', port: 4000 + id },
    state: 'active',
    api: `http://10.0.1.${id}:8080`,
    ...extra,
  };
}

const up = (sessions: number, capacity: number, state: 'active' | 'draining' = 'active'): StatusView => ({
  reachable: true,
  state,
  sessions,
  capacity,
});

function rank(entries: TransceiverEntry[], statuses: Record<number, StatusView>, random = () => 0) {
  return rankTransceivers(entries, (id) => statuses[id], random);
}

describe('rankTransceivers', () => {
  test('least loaded first, by utilisation', () => {
    const ranking = rank([entry(1), entry(2), entry(3)], { 1: up(50, 100), 2: up(10, 100), 3: up(30, 100) });
    assert.deepEqual(
      ranking.candidates.map((candidate) => candidate.id),
      [2, 3, 1],
    );
    assert.equal(ranking.skipped.size, 0);
    assert.deepEqual(ranking.candidates[0], {
      id: 2,
      api: 'http://10.0.1.2:8080',
      sessions: 10,
      capacity: 100,
    });
  });

  test('utilisation, not absolute sessions, across different capacities', () => {
    // 40/200 = 20 % beats 10/20 = 50 %.
    const ranking = rank([entry(1), entry(2)], { 1: up(10, 20), 2: up(40, 200) });
    assert.deepEqual(
      ranking.candidates.map((candidate) => candidate.id),
      [2, 1],
    );
  });

  test('equal utilisation: more free slots first', () => {
    const ranking = rank([entry(1), entry(2)], { 1: up(5, 10), 2: up(50, 100) });
    assert.deepEqual(
      ranking.candidates.map((candidate) => candidate.id),
      [2, 1],
    );
  });

  test('exact ties are broken by random(), so replicas spread out', () => {
    const entries = [entry(1), entry(2), entry(3)];
    const statuses = { 1: up(0, 10), 2: up(0, 10), 3: up(0, 10) };
    const draws = (values: number[]) => {
      let index = 0;
      return () => values[index++]!;
    };
    assert.deepEqual(
      rank(entries, statuses, draws([0.9, 0.1, 0.5])).candidates.map((candidate) => candidate.id),
      [2, 3, 1],
    );
    assert.deepEqual(
      rank(entries, statuses, draws([0.2, 0.8, 0.1])).candidates.map((candidate) => candidate.id),
      [3, 1, 2],
    );
    // With Math.random every order shows up eventually; all three always come back.
    const firsts = new Set<number>();
    for (let round = 0; round < 200; round++) {
      const ids = rankTransceivers(entries, (id) => statuses[id as 1 | 2 | 3]).candidates.map((c) => c.id);
      assert.deepEqual([...ids].sort(), [1, 2, 3]);
      firsts.add(ids[0]!);
    }
    assert.deepEqual([...firsts].sort(), [1, 2, 3]);
  });

  test('skips draining (table or status), full, unreachable, unknown and API-less transceivers', () => {
    const entries = [
      entry(1, { state: 'draining' }),
      entry(2),
      entry(3),
      entry(4),
      entry(5),
      entry(6, { api: undefined }),
      entry(7),
      entry(8),
      entry(9),
    ];
    const ranking = rank(entries, {
      1: up(0, 10),
      2: up(0, 10, 'draining'),
      3: up(10, 10),
      4: up(11, 10),
      5: { reachable: false, reason: 'ECONNREFUSED' },
      6: up(0, 10),
      // 7: no status at all
      8: up(0, 0),
      9: up(9, 10),
    });
    assert.deepEqual(
      ranking.candidates.map((candidate) => candidate.id),
      [9],
    );
    assert.deepEqual(Object.fromEntries(ranking.skipped), {
      1: 'draining',
      2: 'draining',
      3: 'full',
      4: 'full',
      5: 'unreachable',
      6: 'no-api',
      7: 'unreachable',
      8: 'full',
    });
  });

  test('an empty table', () => {
    const ranking = rank([], {});
    assert.deepEqual(ranking.candidates, []);
    assert.equal(describeSkipped(ranking.skipped), 'the routing table lists no transceiver');
  });
});

describe('describeSkipped', () => {
  test('counts by reason', () => {
    const skipped = new Map([
      [1, 'draining'],
      [2, 'full'],
      [3, 'full'],
      [4, 'no-api'],
    ] as const);
    assert.equal(describeSkipped(skipped), '4 transceivers: 1 draining, 2 full, 1 without an api URL');
    assert.equal(describeSkipped(new Map([[1, 'unreachable']])), '1 transceiver: 1 unreachable');
  });
});
