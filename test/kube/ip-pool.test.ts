import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ipv4Pool } from './ip-pool.ts';

test('skips reserved addresses and hands out each address once', () => {
  const pool = new Ipv4Pool('10.88.0.0/16', ['10.88.0.1']);
  assert.equal(pool.allocate(), '10.88.0.2');
  assert.equal(pool.allocate(), '10.88.0.3');
});

test('a released address comes back only after the others; network and broadcast never', () => {
  const pool = new Ipv4Pool('192.168.5.0/29', ['192.168.5.1']);
  const first = [pool.allocate(), pool.allocate(), pool.allocate()];
  assert.deepEqual(first, ['192.168.5.2', '192.168.5.3', '192.168.5.4']);
  pool.release('192.168.5.2');
  assert.equal(pool.allocate(), '192.168.5.5');
  assert.equal(pool.allocate(), '192.168.5.6');
  assert.equal(pool.allocate(), '192.168.5.2');
  assert.throws(() => pool.allocate(), /exhausted/);
});

test('rejects malformed input', () => {
  assert.throws(() => new Ipv4Pool('10.88.0.0'), /bad pod CIDR/);
  assert.throws(() => new Ipv4Pool('10.88.0/16'), /bad IPv4/);
});
