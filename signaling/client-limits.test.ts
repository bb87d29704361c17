import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientLimits, clientKey, RECHECK_INTERVAL_MS } from './client-limits.ts';

const config = { offersPerMinute: 60, offerBurst: 3, maxSessions: 2, maxClients: 100 };

describe('clientKey', () => {
  test('IPv4 as is; IPv4-mapped IPv6 as IPv4; IPv6 by its /64', () => {
    assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
  });

  test('with a token: the address and a hash of the token, never the token', () => {
    const key = clientKey('192.0.2.7', 'secret-token-value');
    assert.match(key, /^192\.0\.2\.7 t:[A-Za-z0-9_-]{22}$/);
    assert.ok(!key.includes('secret'));
    assert.notEqual(key, clientKey('192.0.2.7', 'another-token'));
    assert.notEqual(key, clientKey('192.0.2.8', 'secret-token-value'));
  });
});

describe('ClientLimits', () => {
  test('a burst, then one offer per second; Retry-After says when', () => {
    const limits = new ClientLimits(config);
    for (let i = 0; i < 3; i++) assert.equal(limits.takeOffer('a', 1_000).kind, 'ok');
    assert.deepEqual(limits.takeOffer('a', 1_000), { kind: 'rate-limited', retryAfterS: 1 });
    assert.equal(limits.takeOffer('b', 1_000).kind, 'ok', 'another client has its own bucket');
    assert.equal(limits.takeOffer('a', 1_500).kind, 'rate-limited');
    assert.equal(limits.takeOffer('a', 2_000).kind, 'ok', 'refilled at 1 a second');
    assert.equal(limits.takeOffer('a', 2_000).kind, 'rate-limited');
  });

  test('the session cap counts pending offers; release and forget free slots', () => {
    const limits = new ClientLimits(config);
    assert.equal(limits.reserve('a', 0).kind, 'reserved');
    assert.equal(limits.reserve('a', 0).kind, 'reserved');
    assert.deepEqual(limits.reserve('a', 0), { kind: 'full', recheck: [] }, 'two in flight hold both slots');
    limits.release('a');
    limits.commit('a', 's1', 0);
    assert.equal(limits.reserve('a', 0).kind, 'reserved');
    limits.commit('a', 's2', 0);
    assert.equal(limits.trackedSessions, 2);
    limits.forget('s1');
    assert.equal(limits.reserve('a', 0).kind, 'reserved', 'a DELETE frees the slot at once');
  });

  test('at the cap: the sessions to ask about, at most every RECHECK_INTERVAL_MS', () => {
    const limits = new ClientLimits(config);
    for (const session of ['s1', 's2']) {
      limits.reserve('a', 0);
      limits.commit('a', session, 0);
    }
    assert.deepEqual(limits.reserve('a', 10_000), { kind: 'full', recheck: ['s1', 's2'] });
    assert.deepEqual(limits.reserve('a', 10_000 + RECHECK_INTERVAL_MS - 1), { kind: 'full', recheck: [] });
    const later = limits.reserve('a', 10_000 + RECHECK_INTERVAL_MS);
    assert.equal(later.kind, 'full');
    assert.equal(later.kind === 'full' && later.recheck.length, 2);
    limits.forget('s2'); // the transceiver said 404
    assert.equal(limits.reserve('a', 10_000 + RECHECK_INTERVAL_MS).kind, 'reserved');
  });

  test('bounded: past maxClients the least recently seen client is forgotten, idle ones swept', () => {
    const limits = new ClientLimits({ ...config, maxClients: 3 });
    limits.reserve('a', 0);
    limits.commit('a', 's1', 0);
    for (const key of ['b', 'c']) limits.takeOffer(key, 0);
    limits.takeOffer('a', 1); // a is now the most recent
    limits.takeOffer('d', 2); // evicts b
    assert.equal(limits.clients, 3);
    assert.equal(limits.evicted, 1);
    limits.takeOffer('e', 3); // evicts c
    limits.takeOffer('f', 4); // evicts a, and its session records with it
    assert.equal(limits.trackedSessions, 0);
    // A minute on, clients with full buckets and no sessions are swept.
    limits.takeOffer('g', 120_000);
    assert.equal(limits.clients, 1);
  });
});
