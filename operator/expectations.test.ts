import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PodExpectations } from './expectations.ts';
import { pod } from './test-support/fixtures.ts';

const names = (pods: { name: string }[]) => pods.map((p) => p.name).toSorted();

describe('PodExpectations', () => {
  it('counts a created pod until the cache has it', () => {
    const expectations = new PodExpectations(1_000);
    expectations.expectCreated('voice/echo', pod(2, { podIP: undefined }), 0);
    assert.deepEqual(names(expectations.view('voice/echo', [pod(1)], 10)), ['echo-1', 'echo-2']);
    assert.ok(expectations.pending('voice/echo'));
    assert.deepEqual(names(expectations.view('voice/echo', [pod(1), pod(2)], 20)), ['echo-1', 'echo-2']);
    assert.ok(!expectations.pending('voice/echo'));
  });

  it('hides a deleted pod until the cache drops it or shows it terminating', () => {
    const expectations = new PodExpectations(1_000);
    expectations.expectDeleted('voice/echo', pod(1), 0);
    assert.deepEqual(names(expectations.view('voice/echo', [pod(1), pod(2)], 10)), ['echo-2']);
    assert.deepEqual(names(expectations.view('voice/echo', [pod(1, { terminating: true }), pod(2)], 20)), [
      'echo-1',
      'echo-2',
    ]);
    assert.ok(!expectations.pending('voice/echo'));
  });

  it('gives up on an expectation after its time to live', () => {
    const expectations = new PodExpectations(1_000);
    expectations.expectCreated('voice/echo', pod(2), 0);
    expectations.expectDeleted('voice/echo', pod(1), 0);
    assert.deepEqual(names(expectations.view('voice/echo', [pod(1)], 1_001)), ['echo-1']);
    assert.ok(!expectations.pending('voice/echo'));
  });

  it('keeps pools apart', () => {
    const expectations = new PodExpectations(1_000);
    expectations.expectCreated('voice/a', pod(2), 0);
    assert.deepEqual(expectations.view('voice/b', [], 1), []);
    expectations.forget('voice/a');
    assert.deepEqual(expectations.view('voice/a', [], 1), []);
  });
});
