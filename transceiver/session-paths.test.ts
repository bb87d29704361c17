import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { TransportAddress } from '../protocol/address.ts';
import { DEFAULT_PATH_LIMITS, SessionPaths } from './session-paths.ts';

const at = (port: number): { client: TransportAddress; key: string } => ({
  client: { family: 4, address: '198.51.100.7', port },
  key: `198.51.100.7|${port}`,
});

/** A check from `port` with transaction ID `id`; the verdict. */
function check(paths: SessionPaths, port: number, id: string, now = 0, bytes = 100, useCandidate = false) {
  const { client, key } = at(port);
  return paths.onCheck(client, key, id, bytes, useCandidate, now);
}

describe('SessionPaths', () => {
  test('a path is validated only by the answer to its own outstanding challenge', () => {
    const paths = new SessionPaths();
    const verdict = check(paths, 1, 't1');
    assert.equal(verdict.kind, 'deliver');
    assert.ok(verdict.kind === 'deliver' && verdict.challenge);
    if (verdict.kind !== 'deliver') return;
    assert.ok(paths.startChallenge(verdict.path, 'c1', 100, 0));
    assert.equal(paths.onChallengeResponse(at(2).key, 'c1'), undefined, 'another address cannot answer');
    assert.equal(paths.onChallengeResponse(at(1).key, 'c2'), undefined, 'a wrong transaction ID');
    assert.ok(paths.onChallengeResponse(at(1).key, 'c1'));
    assert.equal(paths.current?.key, at(1).key);
    assert.equal(paths.onChallengeResponse(at(1).key, 'c1'), undefined, 'an answer counts once');
  });

  test('a challenge is repeated only after challengeRetryMs', () => {
    const paths = new SessionPaths();
    const first = check(paths, 1, 't1', 0);
    assert.ok(first.kind === 'deliver');
    paths.startChallenge(first.path, 'c1', 50, 0);
    const soon = check(paths, 1, 't2', DEFAULT_PATH_LIMITS.challengeRetryMs - 1);
    assert.ok(soon.kind === 'deliver' && !soon.challenge);
    const later = check(paths, 1, 't3', DEFAULT_PATH_LIMITS.challengeRetryMs);
    assert.ok(later.kind === 'deliver' && later.challenge);
  });

  test('for any mix of checks, data and replies, an unvalidated path never gets more than 3× its bytes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            kind: fc.constantFrom('check', 'data-in', 'reply', 'send', 'challenge'),
            port: fc.integer({ min: 1, max: 3 }),
            bytes: fc.integer({ min: 1, max: 1500 }),
          }),
          { maxLength: 200 },
        ),
        (events) => {
          const paths = new SessionPaths();
          const received = new Map<string, number>();
          const sent = new Map<string, number>();
          let n = 0;
          for (const event of events) {
            const { client, key } = at(event.port);
            n++;
            if (event.kind === 'check') {
              const verdict = paths.onCheck(client, key, `t${n}`, event.bytes, n % 2 === 0, n);
              if (verdict.kind === 'deliver') received.set(key, (received.get(key) ?? 0) + event.bytes);
            } else if (event.kind === 'data-in') {
              if (paths.onData(key, event.bytes, n))
                received.set(key, (received.get(key) ?? 0) + event.bytes);
            } else if (event.kind === 'reply') {
              if (paths.admitReply(key, event.bytes)) sent.set(key, (sent.get(key) ?? 0) + event.bytes);
            } else if (event.kind === 'send') {
              const verdict = paths.routeData(Buffer.alloc(event.bytes));
              if (verdict.kind === 'send')
                sent.set(verdict.path.key, (sent.get(verdict.path.key) ?? 0) + event.bytes);
            } else {
              const path = paths.path(key);
              if (path && paths.startChallenge(path, `c${n}`, event.bytes, n))
                sent.set(key, (sent.get(key) ?? 0) + event.bytes);
            }
          }
          for (const [key, bytes] of sent)
            assert.ok(bytes <= 3 * (received.get(key) ?? 0), `${key}: ${bytes}`);
        },
      ),
    );
  });

  test('a transaction ID seen from one address is a replay from any other, a retransmission from the same', () => {
    const paths = new SessionPaths();
    assert.equal(check(paths, 1, 'same').kind, 'deliver');
    assert.equal(check(paths, 1, 'same').kind, 'deliver');
    assert.equal(check(paths, 2, 'same').kind, 'replayed');
    assert.equal(paths.size, 1, 'the replay made no path');
  });

  test('memory per session is bounded: remembered IDs, paths and held packets', () => {
    const paths = new SessionPaths({ ...DEFAULT_PATH_LIMITS, checksPerSecond: 1e9, checkBurst: 1e9 });
    for (let i = 0; i < 10_000; i++) check(paths, 1 + (i % 100), `t${i}`, i);
    assert.ok(paths.size <= DEFAULT_PATH_LIMITS.maxPaths);
    // Old IDs are forgotten: the first one is "new" again (from any address).
    assert.equal(check(paths, 500, 't0', 20_000).kind, 'deliver');
    for (let i = 0; i < 100; i++) paths.routeData(Buffer.alloc(1_000));
    assert.ok(paths.heldCount <= DEFAULT_PATH_LIMITS.holdPackets);
  });

  test('checks beyond the rate are refused, and the bucket refills with time', () => {
    const paths = new SessionPaths();
    let delivered = 0;
    for (let i = 0; i < 1_000; i++) if (check(paths, 1, `t${i}`, 0).kind === 'deliver') delivered++;
    assert.equal(delivered, DEFAULT_PATH_LIMITS.checkBurst);
    assert.equal(check(paths, 1, 'late', 1_000).kind, 'deliver');
  });
});
