import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DelayLine } from './delay-line.ts';

describe('DelayLine', () => {
  test('items come out delayMs after they went in, in order', () => {
    const line = new DelayLine<string>(500);
    assert.equal(line.nextDueAt(), undefined);
    line.push('a', 1000);
    line.push('b', 1020);
    line.push('c', 1040);
    assert.equal(line.size, 3);
    assert.equal(line.nextDueAt(), 1500);
    assert.deepEqual(line.takeDue(1499), []);
    assert.deepEqual(line.takeDue(1500), ['a']);
    assert.equal(line.nextDueAt(), 1520);
    assert.deepEqual(line.takeDue(1545), ['b', 'c']);
    assert.equal(line.size, 0);
    assert.equal(line.nextDueAt(), undefined);
  });

  test('a clock that steps back never reorders items', () => {
    const line = new DelayLine<number>(10);
    line.push(1, 100);
    line.push(2, 95);
    assert.equal(line.nextDueAt(), 110);
    assert.deepEqual(line.takeDue(109), []);
    assert.deepEqual(line.takeDue(110), [1, 2]);
  });

  test('zero delay: due at once', () => {
    const line = new DelayLine<string>(0);
    line.push('x', 5);
    assert.deepEqual(line.takeDue(5), ['x']);
  });

  test('clear empties it', () => {
    const line = new DelayLine<string>(1);
    line.push('x', 0);
    line.clear();
    assert.equal(line.size, 0);
    assert.deepEqual(line.takeDue(100), []);
  });

  test('long runs keep only what is waiting', () => {
    const line = new DelayLine<number>(100);
    let taken = 0;
    for (let t = 0; t < 100_000; t += 20) {
      line.push(t, t);
      taken += line.takeDue(t).length;
      assert.ok(line.size <= 6);
    }
    assert.equal(taken + line.size, 5000);
  });

  test('refuses a negative or NaN delay', () => {
    assert.throws(() => new DelayLine(-1), RangeError);
    assert.throws(() => new DelayLine(Number.NaN), RangeError);
  });
});
