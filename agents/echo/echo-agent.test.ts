import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { encodeControl, frameBytes, SUBPROTOCOL } from '../../protocol/backend.ts';
import { type EchoAgent, startEchoAgent } from './echo-agent.ts';

const logger = pino({ level: 'silent' });

const start = encodeControl({
  type: 'start',
  sessionId: 'agent-test',
  audio: { encoding: 'pcm16le', sampleRate: 16000, channels: 1, frameMs: 20 },
  metadata: {},
});

/** Resolves with the status of a refused upgrade, or rejects if it was accepted. */
function refusedStatus(url: string, protocols: string[] | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', () => {});
  });
}

async function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, SUBPROTOCOL);
  await once(ws, 'open');
  return ws;
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('echo agent server', () => {
  let agent: EchoAgent;
  let url: string;

  before(async () => {
    agent = await startEchoAgent({ port: 0, delayMs: 0, logger });
    url = `ws://127.0.0.1:${agent.port}/`;
  });
  after(() => agent.close());

  test('plain HTTP gets 426', async () => {
    const [response] = (await once(request(`http://127.0.0.1:${agent.port}/`).end(), 'response')) as [
      import('node:http').IncomingMessage,
    ];
    assert.equal(response.statusCode, 426);
    response.resume();
  });

  test('an upgrade without voice-edge.v1 is refused with 400', async () => {
    assert.equal(await refusedStatus(url, undefined), 400);
    assert.equal(await refusedStatus(url, ['voice-edge.v2']), 400);
    assert.equal(agent.connections, 0);
  });

  test('voice-edge.v1 among others is accepted and chosen', async () => {
    const ws = new WebSocket(url, ['voice-edge.v2', SUBPROTOCOL]);
    await once(ws, 'open');
    assert.equal(ws.protocol, SUBPROTOCOL);
    assert.equal(agent.connections, 1);
    ws.close();
    await once(ws, 'close');
    await until(() => agent.connections === 0);
  });

  test('echoes audio and closes on end', async () => {
    const ws = await connect(url);
    ws.send(start);
    const frame = Buffer.alloc(frameBytes(16000), 3);
    ws.send(frame);
    const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
    assert.ok(isBinary);
    assert.deepEqual(data, frame);
    ws.send(encodeControl({ type: 'end', reason: 'client-hangup' }));
    const [code] = await once(ws, 'close');
    assert.equal(code, 1000);
    await until(() => agent.connections === 0);
  });
});

describe('echo agent shutdown', () => {
  test('close() ends every call with end "shutdown" and close 1000, and is idempotent', async () => {
    const agent = await startEchoAgent({ port: 0, delayMs: 0, logger });
    const url = `ws://127.0.0.1:${agent.port}/`;
    const clients = await Promise.all([connect(url), connect(url)]);
    for (const ws of clients) ws.send(start);
    await until(() => agent.connections === 2);
    const received = clients.map(
      (ws) =>
        new Promise<{ messages: string[]; code: number }>((resolve) => {
          const messages: string[] = [];
          ws.on('message', (data) => messages.push(String(data)));
          ws.on('close', (code) => resolve({ messages, code }));
        }),
    );
    const closing = agent.close();
    assert.equal(agent.close(), closing);
    await closing;
    for (const { messages, code } of await Promise.all(received)) {
      assert.deepEqual(
        messages.map((text) => JSON.parse(text)),
        [{ type: 'end', reason: 'shutdown' }],
      );
      assert.equal(code, 1000);
    }
    assert.equal(agent.connections, 0);
    await assert.rejects(connect(url), /ECONNREFUSED/);
  });
});

describe('npm run agent:echo', () => {
  test('listens, echoes, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['agents/echo/main.ts', '--port', '0', '--delay-ms', '0', '--host', '127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      let port: number | undefined;
      for await (const line of lines) {
        const entry = JSON.parse(line) as { msg: string; port?: number };
        if (entry.msg === 'echo agent listening') {
          port = entry.port;
          break;
        }
      }
      assert.ok(port !== undefined && port > 0);
      const ws = await connect(`ws://127.0.0.1:${port}/`);
      ws.send(start);
      ws.send(Buffer.from([1, 2, 3, 4]));
      const [data] = (await once(ws, 'message')) as [Buffer];
      assert.deepEqual(data, Buffer.from([1, 2, 3, 4]));
      const closed = once(ws, 'close');
      child.kill('SIGTERM');
      const [code] = await closed;
      assert.equal(code, 1000);
      const [exitCode] = await once(child, 'exit');
      assert.equal(exitCode, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('bad arguments exit 2 with usage', async () => {
    const child = spawn(process.execPath, ['agents/echo/main.ts', '--delay-ms', '-5'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const [exitCode] = await once(child, 'exit');
    assert.equal(exitCode, 2);
    assert.match(stderr, /delay-ms/);
    assert.match(stderr, /usage/);
  });
});
