import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coreSpeedMs } from './core-speed.ts';

test('coreSpeedMs times the probe on a core; NaN for a core that does not exist', () => {
  const ms = coreSpeedMs(0);
  assert.ok(Number.isFinite(ms) && ms > 0, `${ms}`);
  assert.ok(Number.isNaN(coreSpeedMs(4096)));
});
