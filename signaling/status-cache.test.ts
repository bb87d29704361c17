import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { RoutingTable, TransceiverEntry } from '../protocol/routing-table.ts';
import { freeTcpPort } from '../test/support/net.ts';
import { StatusCache } from './status-cache.ts';
import { TransceiverDouble } from './test-support/transceiver-double.ts';
import { apiUrl, TransceiverClient } from './transceiver-client.ts';

const CLUSTER = 7;
const client = new TransceiverClient({ requestTimeoutMs: 2_000, statusTimeoutMs: 200 });

function table(entries: Array<Pick<TransceiverEntry, 'id'> & Partial<TransceiverEntry>>): RoutingTable {
  return {
    clusterId: CLUSTER,
    generation: 1,
    peers: [],
    edgeRelays: [],
    relaySources: [],
    transceivers: entries.map((entry) => ({
      tunnel: { family: 4, address: '10.0.0.1', port: 4000 + entry.id },
      state: 'active',
      ...entry,
    })),
  };
}

let doubles: TransceiverDouble[] = [];
let cache: StatusCache | undefined;
before(async () => {
  doubles = await Promise.all([
    TransceiverDouble.start({ id: 1, clusterId: CLUSTER, capacity: 10 }),
    TransceiverDouble.start({ id: 2, clusterId: CLUSTER, capacity: 4, state: 'draining' }),
  ]);
});
after(async () => {
  await Promise.all(doubles.map((double) => double.close()));
});
afterEach(() => {
  cache?.close();
  for (const double of doubles) {
    double.reset();
    double.clusterId = CLUSTER;
  }
  doubles[1]!.state = 'draining';
});

describe('apiUrl', () => {
  test('keeps a path prefix and tolerates a trailing slash', () => {
    assert.equal(apiUrl('http://t:8080', 'status').href, 'http://t:8080/status');
    assert.equal(apiUrl('http://t:8080/', 'status').href, 'http://t:8080/status');
    assert.equal(apiUrl('http://t:8080/api', 'sessions/a%2Fb').href, 'http://t:8080/api/sessions/a%2Fb');
  });
});

describe('StatusCache', () => {
  test('polls every transceiver with an api; views carry what /status says', async () => {
    const [one, two] = doubles as [TransceiverDouble, TransceiverDouble];
    one.extraSessions = 3;
    const errors: string[] = [];
    cache = new StatusCache({
      client,
      intervalMs: 1_000,
      staleMs: 3_000,
      onPollError: (id, error) => errors.push(`${id}: ${error}`),
    });
    await cache.setTable(table([{ id: 1, api: one.api }, { id: 2, api: two.api }, { id: 3 }]));
    assert.deepEqual(cache.view(1), { reachable: true, state: 'active', sessions: 3, capacity: 10 });
    assert.deepEqual(cache.view(2), { reachable: true, state: 'draining', sessions: 0, capacity: 4 });
    assert.equal(cache.view(3), undefined, 'no api: not polled');
    assert.deepEqual(errors, []);
    assert.deepEqual(cache.availability(), { available: 1, full: 0, draining: 1, unavailable: 0 });
  });

  test('unreachable, slow, misrouted and wrong-cluster transceivers are unavailable, with a reason', async () => {
    const [one, two] = doubles as [TransceiverDouble, TransceiverDouble];
    const closedPort = await freeTcpPort();
    const errors: Array<[number, boolean]> = [];
    cache = new StatusCache({
      client,
      intervalMs: 1_000,
      staleMs: 3_000,
      onPollError: (id, _error, first) => errors.push([id, first]),
    });
    one.statusDelayMs = 500;
    two.reportedId = 9;
    await cache.setTable(
      table([
        { id: 1, api: one.api },
        { id: 2, api: two.api },
        { id: 3, api: `http://127.0.0.1:${closedPort}` },
      ]),
    );
    const reason = (id: number) => {
      const view = cache?.view(id);
      assert.ok(view && !view.reachable, `transceiver ${id} should be unavailable`);
      return view.reason;
    };
    assert.match(reason(1), /no answer within 200 ms/);
    assert.match(reason(2), /answers as transceiver 9, not 2/);
    assert.match(reason(3), /ECONNREFUSED/);
    // The next failure of the same transceivers is not a new outage.
    await cache.pollAll();
    assert.deepEqual(
      errors.sort((a, b) => a[0] - b[0] || Number(b[1]) - Number(a[1])),
      [
        [1, true],
        [1, false],
        [2, true],
        [2, false],
        [3, true],
        [3, false],
      ],
    );
    two.reportedId = undefined;
    two.clusterId = 8;
    await cache.pollAll();
    assert.match(reason(2), /answers for cluster 8, not 7/);
  });

  test('recovery is reported; a status older than staleMs is unavailable', async () => {
    const [one] = doubles as [TransceiverDouble];
    let now = 1_000_000;
    const recovered: number[] = [];
    cache = new StatusCache({
      client,
      intervalMs: 1_000,
      staleMs: 3_000,
      now: () => now,
      onRecovered: (id) => recovered.push(id),
    });
    one.statusDelayMs = 500;
    await cache.setTable(table([{ id: 1, api: one.api }]));
    assert.equal(cache.view(1)?.reachable, false);
    one.statusDelayMs = 0;
    await cache.pollAll();
    assert.deepEqual(recovered, [1]);
    assert.equal(cache.view(1)?.reachable, true);
    now += 3_000;
    assert.equal(cache.view(1)?.reachable, true);
    now += 1;
    assert.deepEqual(cache.view(1), { reachable: false, reason: 'last status is 3001 ms old' });
  });

  test('what placement learns adjusts the figures until the next poll', async () => {
    const [one] = doubles as [TransceiverDouble];
    cache = new StatusCache({ client, intervalMs: 1_000, staleMs: 3_000 });
    await cache.setTable(table([{ id: 1, api: one.api }]));
    cache.notePlaced(1);
    cache.notePlaced(1);
    assert.deepEqual(cache.view(1), { reachable: true, state: 'active', sessions: 2, capacity: 10 });
    cache.markFull(1);
    assert.deepEqual(cache.view(1), { reachable: true, state: 'active', sessions: 10, capacity: 10 });
    cache.markDraining(1);
    assert.equal((cache.view(1) as { state: string }).state, 'draining');
    cache.markUnreachable(1, 'connect ECONNREFUSED');
    assert.deepEqual(cache.view(1), { reachable: false, reason: 'connect ECONNREFUSED' });
    await cache.pollAll();
    assert.deepEqual(cache.view(1), { reachable: true, state: 'active', sessions: 0, capacity: 10 });
    cache.notePlaced(99); // unknown: ignored
  });

  test('a new table forgets removed transceivers, polls new ones, keeps known ones', async () => {
    const [one, two] = doubles as [TransceiverDouble, TransceiverDouble];
    cache = new StatusCache({ client, intervalMs: 1_000, staleMs: 3_000 });
    await cache.setTable(table([{ id: 1, api: one.api }]));
    cache.notePlaced(1);
    await cache.setTable(
      table([
        { id: 1, api: one.api },
        { id: 2, api: two.api },
      ]),
    );
    assert.equal((cache.view(1) as { sessions: number }).sessions, 1, 'kept, not re-polled');
    assert.equal(cache.view(2)?.reachable, true);
    await cache.setTable(table([{ id: 2, api: two.api }]));
    assert.equal(cache.view(1), undefined);
  });

  test('start() polls at once, then every intervalMs; close() stops', async () => {
    const [one] = doubles as [TransceiverDouble];
    cache = new StatusCache({ client, intervalMs: 100, staleMs: 300 });
    void cache.setTable(table([{ id: 1, api: one.api }]));
    await cache.start();
    const before = one.requests.filter((request) => request.url === '/status').length;
    await new Promise((resolve) => setTimeout(resolve, 350));
    const during = one.requests.filter((request) => request.url === '/status').length;
    assert.ok(during - before >= 2, `expected at least 2 more polls, got ${during - before}`);
    cache.close();
    await new Promise((resolve) => setTimeout(resolve, 250));
    const afterClose = one.requests.filter((request) => request.url === '/status').length;
    assert.ok(afterClose - during <= 1, 'at most one poll that was already in flight');
  });
});
