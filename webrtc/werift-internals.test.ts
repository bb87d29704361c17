import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertWeriftMembers, WeriftInternalsChanged } from './werift-internals.ts';

test('members of the right kind pass; a declared member may hold undefined', () => {
  const value = { count: 0, name: 'x', run() {}, later: undefined };
  assertWeriftMembers(value, 'thing', { count: 'number', name: 'string', run: 'function', later: 'present' });
});

test('every missing or changed member is named', () => {
  assert.throws(
    () =>
      assertWeriftMembers({ count: '0', name: 'x' }, 'RTCRtpSender', {
        count: 'number',
        name: 'string',
        run: 'function',
        later: 'present',
      }),
    (error: Error) => {
      assert.ok(error instanceof WeriftInternalsChanged);
      assert.equal(error.message, "werift's RTCRtpSender no longer has: count, run, later");
      return true;
    },
  );
  assert.throws(() => assertWeriftMembers(undefined, 'thing', { count: 'number' }), WeriftInternalsChanged);
});
