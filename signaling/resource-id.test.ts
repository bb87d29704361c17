import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatResourceId, parseResourceId, sessionLocation } from './resource-id.ts';

describe('session resource IDs', () => {
  test('round trip, including session IDs that need percent-encoding', () => {
    for (const [id, sessionId] of [
      [0, 'a'],
      [7, 'Zt3_-x'],
      [0xffffffff, 'with.dots.inside'],
      [12, 'slash/and space?#'],
    ] as const) {
      const formatted = formatResourceId(id, sessionId);
      assert.equal(parseResourceId(decodeURIComponent(formatted))?.sessionId, sessionId);
      assert.deepEqual(parseResourceId(decodeURIComponent(formatted)), { transceiverId: id, sessionId });
    }
    assert.equal(sessionLocation(3, 'a/b'), '/whip/sessions/3.a%2Fb');
  });

  test('malformed IDs', () => {
    for (const bad of [
      '',
      '7',
      '7.',
      '.abc',
      'x.abc',
      '07.abc',
      '-1.abc',
      '1e3.abc',
      '4294967296.abc',
      '99999999999.abc',
      `1.${'a'.repeat(257)}`,
      '1.a\u0000b',
      '1.a\nb',
    ]) {
      assert.equal(parseResourceId(bad), undefined, JSON.stringify(bad));
    }
    assert.deepEqual(parseResourceId(`1.${'a'.repeat(256)}`)?.transceiverId, 1);
  });

  test('the several-clusters form names the cluster: <clusterId>-<transceiverId>.<sessionId>', () => {
    assert.equal(sessionLocation(100, 'a/b', 2), '/whip/sessions/2-100.a%2Fb');
    assert.deepEqual(parseResourceId('2-100.x-y'), { clusterId: 2, transceiverId: 100, sessionId: 'x-y' });
    assert.deepEqual(parseResourceId('0-0.s'), { clusterId: 0, transceiverId: 0, sessionId: 's' });
    assert.deepEqual(parseResourceId('65535-4294967295.s')?.clusterId, 65535);
    for (const bad of ['65536-1.s', '-1.s', '1-.s', '01-1.s', '1-01.s', '1-2-3.s', 'a-1.s']) {
      assert.equal(parseResourceId(bad), undefined, bad);
    }
  });
});
