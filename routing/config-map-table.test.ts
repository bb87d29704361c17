import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { serializeRoutingTable } from '../protocol/routing-table.ts';
import { type ConfigMapOutcome, ConfigMapTableTracker, ROUTING_TABLE_KEY } from './config-map-table.ts';

const tableText = (generation: number, id = 17) =>
  JSON.stringify({
    clusterId: 3,
    generation,
    transceivers: [{ id, tunnel: '10.88.0.5:7000', state: 'active', api: 'http://10.88.0.5:8090' }],
  });
const data = (text: string) => ({ [ROUTING_TABLE_KEY]: text, unrelated: 'x' });
const generationOf = (outcome: ConfigMapOutcome) => {
  assert.equal(outcome.type, 'table', JSON.stringify(outcome));
  return outcome.type === 'table' ? outcome.table.generation : -1;
};

describe('ConfigMapTableTracker', () => {
  test('a valid table is delivered once; a repeat of it (relist, resync) is unchanged', () => {
    const tracker = new ConfigMapTableTracker('edge/cluster-a-routing');
    const first = tracker.observe(data(tableText(1)));
    assert.equal(generationOf(first), 1);
    assert.equal(first.type === 'table' && serializeRoutingTable(first.table) !== undefined, true);
    assert.deepEqual(tracker.observe(data(tableText(1))), { type: 'unchanged' });
    assert.equal(generationOf(tracker.observe(data(tableText(2)))), 2);
    assert.equal(tracker.current?.generation, 2);
  });

  test('an invalid table is reported once, the last good one stays; a fix is delivered', () => {
    const tracker = new ConfigMapTableTracker('edge/r');
    tracker.observe(data(tableText(1)));
    const bad = tracker.observe(data('{"clusterId": "three"}'));
    assert.equal(bad.type, 'invalid');
    assert.match(
      bad.type === 'invalid' ? bad.error : '',
      /^routing table ConfigMap edge\/r \(routing\.json\): .*clusterId/,
    );
    assert.deepEqual(tracker.observe(data('{"clusterId": "three"}')), { type: 'unchanged' });
    assert.equal(tracker.current?.generation, 1);
    const notJson = tracker.observe(data('{ nope'));
    assert.match(notJson.type === 'invalid' ? notJson.error : '', /not valid YAML\/JSON/);
    assert.equal(generationOf(tracker.observe(data(tableText(2)))), 2);
  });

  test('going back to the table in force after an invalid one changes nothing', () => {
    const tracker = new ConfigMapTableTracker('edge/r');
    tracker.observe(data(tableText(1)));
    assert.equal(tracker.observe(data('[]')).type, 'invalid');
    assert.deepEqual(tracker.observe(data(tableText(1))), { type: 'unchanged' });
  });

  test('a ConfigMap without the data key is invalid, reported once', () => {
    const tracker = new ConfigMapTableTracker('edge/r');
    assert.deepEqual(tracker.observe(undefined), {
      type: 'invalid',
      error: 'routing table ConfigMap edge/r has no data key routing.json',
    });
    assert.deepEqual(tracker.observe({ other: '1' }), { type: 'unchanged' });
    assert.equal(generationOf(tracker.observe(data(tableText(4)))), 4);
  });

  test('absent before any table: waiting; after: deleted, keeping the last table; recreated: same table unchanged', () => {
    const tracker = new ConfigMapTableTracker('edge/r');
    assert.deepEqual(tracker.observeAbsent(), {
      type: 'missing',
      hadTable: false,
      error: 'routing table ConfigMap edge/r does not exist',
    });
    assert.deepEqual(tracker.observeAbsent(), { type: 'unchanged' });
    tracker.observe(data(tableText(5)));
    assert.deepEqual(tracker.observeAbsent(), {
      type: 'missing',
      hadTable: true,
      error: 'routing table ConfigMap edge/r was deleted; keeping the last table',
    });
    assert.equal(tracker.current?.generation, 5);
    assert.deepEqual(tracker.observe(data(tableText(5))), { type: 'unchanged' });
    assert.equal(generationOf(tracker.observe(data(tableText(6, 18)))), 6);
    assert.equal(tracker.current?.transceivers[0]?.id, 18);
  });
});
