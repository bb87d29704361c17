// The poller against real HTTP servers standing in for transceivers' APIs (the same routes and
// answers as transceiver/api.ts).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { waitUntil } from '../test/support/wait.ts';
import { type PollTarget, StatusPoller } from './status-poller.ts';

interface FakeTransceiver {
  server: Server;
  url: string;
  state: {
    transceiverId: number;
    sessions: number;
    state: 'active' | 'draining';
    drains: number;
    broken: boolean;
    /** When set, every request must carry `Authorization: Bearer <token>` (else 401). */
    token: string | undefined;
    authorizations: (string | undefined)[];
  };
}

async function transceiver(transceiverId: number): Promise<FakeTransceiver> {
  const state = {
    transceiverId,
    sessions: 0,
    state: 'active' as 'active' | 'draining',
    drains: 0,
    broken: false,
    token: undefined as string | undefined,
    authorizations: [] as (string | undefined)[],
  };
  const server = createServer((request, response) => {
    state.authorizations.push(request.headers.authorization);
    if (state.token !== undefined && request.headers.authorization !== `Bearer ${state.token}`) {
      response.writeHead(401).end();
      return;
    }
    if (state.broken) {
      response.writeHead(500).end();
      return;
    }
    if (request.method === 'GET' && request.url === '/status') {
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          transceiverId: state.transceiverId,
          clusterId: 7,
          state: state.state,
          sessions: state.sessions,
          capacity: 50,
        }),
      );
    } else if (request.method === 'POST' && request.url === '/drain') {
      state.drains++;
      state.state = 'draining';
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ state: 'draining' }));
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state };
}

const silent = pino({ level: 'silent' });

describe('StatusPoller', () => {
  const servers: Server[] = [];
  after(() => {
    for (const server of servers) server.close();
  });

  it('samples sessions and state, reports changes, forgets pods that are gone', async () => {
    const one = await transceiver(1);
    const two = await transceiver(2);
    servers.push(one.server, two.server);
    const urls = new Map([
      ['voice/echo-1', one.url],
      ['voice/echo-2', two.url],
    ]);
    let targets: PollTarget[] = [
      { key: 'voice/echo-1', podIP: '127.0.0.1', id: 1 },
      { key: 'voice/echo-2', podIP: '127.0.0.1', id: 2 },
    ];
    const changes: string[] = [];
    const poller = new StatusPoller({
      intervalMs: 50,
      timeoutMs: 40,
      targets: () => targets,
      onChange: (key) => changes.push(key),
      logger: silent,
      baseUrl: (target) => urls.get(target.key)!,
    });
    poller.start();
    try {
      await waitUntil(async () => poller.sample('voice/echo-2') !== undefined, 2_000, 'first samples');
      assert.deepEqual(changes.toSorted(), ['voice/echo-1', 'voice/echo-2']);
      one.state.sessions = 4;
      await waitUntil(async () => poller.sample('voice/echo-1')?.sessions === 4, 2_000, 'sessions 4');
      assert.equal(poller.sample('voice/echo-1')?.capacity, 50);
      assert.equal(changes.filter((key) => key === 'voice/echo-2').length, 1, 'no change, no report');
      targets = [targets[0]!];
      await waitUntil(async () => poller.sample('voice/echo-2') === undefined, 2_000, 'echo-2 forgotten');
    } finally {
      await poller.stop();
    }
  });

  it('believes no answer that names another transceiver, and none from a broken one', async () => {
    const impostor = await transceiver(99);
    servers.push(impostor.server);
    let polls = 0;
    const poller = new StatusPoller({
      intervalMs: 30,
      timeoutMs: 25,
      targets: () => [{ key: 'voice/echo-5', podIP: '127.0.0.1', id: 5 }],
      onChange: () => {},
      onPoll: () => polls++,
      logger: silent,
      baseUrl: () => impostor.url,
    });
    poller.start();
    try {
      await waitUntil(async () => polls >= 3, 2_000, 'three polls');
      assert.equal(poller.sample('voice/echo-5'), undefined);
      impostor.state.transceiverId = 5;
      await waitUntil(async () => poller.sample('voice/echo-5') !== undefined, 2_000, 'a sample');
      impostor.state.broken = true;
      await waitUntil(
        async () => poller.sample('voice/echo-5') === undefined,
        2_000,
        'the sample goes stale',
      );
    } finally {
      await poller.stop();
    }
  });

  it('tells a transceiver to drain until it says it does, then samples it again at once', async () => {
    const target = await transceiver(3);
    servers.push(target.server);
    target.state.broken = true;
    const poller = new StatusPoller({
      intervalMs: 40,
      timeoutMs: 30,
      targets: () => [{ key: 'voice/echo-3', podIP: '127.0.0.1', id: 3 }],
      onChange: () => {},
      logger: silent,
      baseUrl: () => target.url,
    });
    poller.start();
    try {
      poller.requestDrain({ key: 'voice/echo-3', podIP: '127.0.0.1', id: 3 });
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(target.state.drains, 0);
      target.state.broken = false;
      target.state.sessions = 2;
      await waitUntil(async () => poller.sample('voice/echo-3')?.state === 'draining', 2_000, 'draining');
      assert.equal(poller.sample('voice/echo-3')?.sessions, 2);
      const drains = target.state.drains;
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(target.state.drains, drains, 'no more POST /drain once it drains');
    } finally {
      await poller.stop();
    }
  });

  it("sends the target's bearer token on /status and /drain, and the new one once it is rotated", async () => {
    const guarded = await transceiver(4);
    servers.push(guarded.server);
    guarded.state.token = 'first';
    let token = 'first';
    const poller = new StatusPoller({
      intervalMs: 30,
      timeoutMs: 25,
      targets: () => [{ key: 'voice/echo-4', podIP: '127.0.0.1', id: 4, token }],
      onChange: () => {},
      logger: silent,
      baseUrl: () => guarded.url,
    });
    poller.start();
    try {
      await waitUntil(async () => poller.sample('voice/echo-4') !== undefined, 2_000, 'a sample');
      guarded.state.token = 'second';
      await waitUntil(async () => poller.sample('voice/echo-4') === undefined, 2_000, 'refused: stale');
      token = 'second';
      await waitUntil(async () => poller.sample('voice/echo-4') !== undefined, 2_000, 'the new token works');
      poller.requestDrain({ key: 'voice/echo-4', podIP: '127.0.0.1', id: 4, token });
      await waitUntil(async () => poller.sample('voice/echo-4')?.state === 'draining', 2_000, 'draining');
      assert.equal(guarded.state.drains, 1);
      assert.ok(guarded.state.authorizations.includes('Bearer first'));
      assert.ok(guarded.state.authorizations.every((a) => a === 'Bearer first' || a === 'Bearer second'));
    } finally {
      await poller.stop();
    }
  });
});
