// The shared loop with a fake /status; the HTTP side is tested through its two owners
// (operator/status-poller.test.ts, signaling/status-cache.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TransceiverStatus } from '../protocol/transceiver-status.ts';
import {
  type StatusAnswer,
  type StatusFetch,
  type StatusTarget,
  TransceiverStatusPoller,
} from './transceiver-status-poller.ts';

const status = (transceiverId: number, clusterId = 7): TransceiverStatus => ({
  transceiverId,
  clusterId,
  state: 'active',
  sessions: 1,
  capacity: 10,
});

function poller(answer: (target: StatusTarget) => StatusFetch | Promise<StatusFetch>) {
  const answers: Array<[string, StatusAnswer['kind'], string]> = [];
  const created: string[] = [];
  let asked = 0;
  const instance = new TransceiverStatusPoller<StatusTarget, { answers: number }>({
    intervalMs: 1_000,
    fetchStatus: async (target) => {
      asked++;
      return answer(target);
    },
    initialState: (target) => {
      created.push(target.key);
      return { answers: 0 };
    },
    sameTransceiver: (previous, next) => previous.api === next.api,
    onAnswer: (polled, result) => {
      polled.state.answers++;
      answers.push([polled.target.key, result.kind, 'problem' in result ? result.problem : '']);
    },
  });
  return { instance, answers, created, asked: () => asked };
}

describe('TransceiverStatusPoller', () => {
  test('an answer for another transceiver or cluster is a mismatch; a failure is an error', async () => {
    const { instance, answers } = poller((target) =>
      target.key === 'down'
        ? { ok: false, problem: 'ECONNREFUSED' }
        : { ok: true, status: status(target.key === 'other' ? 9 : 1, target.key === 'cluster' ? 8 : 7) },
    );
    instance.setTargets([
      { key: 'own', id: 1, api: 'http://a', clusterId: 7 },
      { key: 'other', id: 1, api: 'http://b' },
      { key: 'cluster', id: 1, api: 'http://c', clusterId: 7 },
      { key: 'down', id: 1, api: 'http://d' },
    ]);
    await instance.pollAll();
    assert.deepEqual(answers.toSorted(), [
      ['cluster', 'mismatch', 'http://c answers for cluster 8, not 7'],
      ['down', 'error', 'ECONNREFUSED'],
      ['other', 'mismatch', 'http://b answers as transceiver 9, not 1'],
      ['own', 'ok', ''],
    ]);
  });

  test('known targets keep their state, a changed one starts again, a gone one is forgotten', async () => {
    const { instance, created } = poller(() => ({ ok: true, status: status(1) }));
    const fresh = instance.setTargets([
      { key: 'a', id: 1, api: 'http://a' },
      { key: 'b', id: 1, api: 'http://b' },
    ]);
    assert.deepEqual(
      fresh.map((polled) => polled.target.key),
      ['a', 'b'],
    );
    await instance.pollAll();
    const again = instance.setTargets([
      { key: 'a', id: 1, api: 'http://a' },
      { key: 'b', id: 1, api: 'http://b2' },
    ]);
    assert.deepEqual(
      again.map((polled) => polled.target.key),
      ['b'],
    );
    assert.equal(instance.get('a')?.state.answers, 1);
    assert.equal(instance.get('b')?.state.answers, 0);
    instance.setTargets([{ key: 'b', id: 1, api: 'http://b2' }]);
    assert.equal(instance.get('a'), undefined);
    assert.deepEqual(created, ['a', 'b', 'b']);
  });

  test('one poll at a time per target; refresh asks again after the one under way', async () => {
    const { promise: gate, resolve: release } = Promise.withResolvers<void>();
    const { instance, answers, asked } = poller(async () => {
      await gate;
      return { ok: true, status: status(1) };
    });
    const [polled] = instance.setTargets([{ key: 'a', id: 1, api: 'http://a' }]);
    const first = instance.poll(polled!);
    const joined = instance.poll(polled!);
    const refreshed = instance.refresh(polled!);
    release();
    await Promise.all([first, joined, refreshed]);
    assert.equal(asked(), 2);
    assert.equal(answers.length, 2);
  });

  test('after stop() answers are dropped and nothing more is asked', async () => {
    const { promise: gate, resolve: release } = Promise.withResolvers<void>();
    const { instance, answers, asked } = poller(async () => {
      await gate;
      return { ok: true, status: status(1) };
    });
    instance.setTargets([{ key: 'a', id: 1, api: 'http://a' }]);
    const started = instance.start();
    const stopped = instance.stop();
    release();
    await Promise.all([started, stopped]);
    await instance.pollAll();
    assert.equal(asked(), 1);
    assert.deepEqual(answers, []);
  });
});
