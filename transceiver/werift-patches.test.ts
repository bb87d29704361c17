// The patches in patches/ (applied by `npm install` through patch-package) each fix one problem of
// the pinned werift; each test here fails if its patch stops applying or stops working.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Candidate, CandidatePair, type Protocol } from 'werift';

describe('werift patches', () => {
  test('001 bound-incoming-transaction-ids: a candidate pair remembers recent check IDs only', () => {
    const remote = new Candidate('f', 1, 'udp', 1, '198.51.100.7', 40000, 'prflx');
    const pair = new CandidatePair({} as Protocol, remote, false);
    for (let index = 0; index < 10_000; index++) pair.noteIncomingRequest(`id-${index}`);
    // Unpatched: all 10,000 stay for the pair's life (a check flood grows memory without bound).
    const kept = (pair as unknown as { requestTransactionIds: Set<string> }).requestTransactionIds.size;
    assert.ok(kept <= 257, `${kept} IDs kept`);
    assert.equal(pair.noteIncomingRequest('id-9999'), true, 'a recent retransmission is still recognised');
    assert.equal(pair.noteIncomingRequest('id-0'), false, 'an ID long gone is new again');
  });
});
