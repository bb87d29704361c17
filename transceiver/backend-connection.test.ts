// BackendConnection against real WebSockets on loopback: the echo agent, a scripted backend (a ws
// server the test drives), and servers that fail in the ways a backend can.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { type EchoAgent, startEchoAgent } from '../agents/echo/echo-agent.ts';
import { encodeMulawSample } from '../audio/mulaw.ts';
import { encodeControl, frameBytes, SUBPROTOCOL, type ToBackendMessage } from '../protocol/backend.ts';
import { DEFAULT_ACCOUNT_SID } from '../protocol/twilio-media-streams.ts';
import {
  BackendConnection,
  type BackendConnectionOptions,
  type BackendUnavailableError,
  DEFAULT_PING_INTERVAL_MS,
} from './backend-connection.ts';
import { createBackendWire } from './backend-wire.ts';

const logger = pino({ level: 'silent' });
const FRAME = frameBytes(16000);

function options(url: string, extra: Partial<BackendConnectionOptions> = {}): BackendConnectionOptions {
  return {
    url,
    sessionId: 'sess-1',
    wire: createBackendWire({
      protocol: 'voice-edge',
      sessionId: 'sess-1',
      sampleRate: 16000,
      metadata: { user: 'alice' },
      accountSid: DEFAULT_ACCOUNT_SID,
    }),
    connectTimeoutMs: 1000,
    logger,
    ...extra,
  };
}

/** A frame whose every sample is `n` (so echoed frames can be told apart). */
function frame(n: number): Buffer {
  const pcm = Buffer.alloc(FRAME);
  for (let i = 0; i < FRAME; i += 2) pcm.writeInt16LE(n, i);
  return pcm;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
}

/** Collects every emitted event of a connection, in order. */
function record(connection: BackendConnection): unknown[][] {
  const events: unknown[][] = [];
  for (const name of [
    'audio',
    'clear',
    'mark',
    'datachannel',
    'event',
    'end',
    'closed',
    'protocolError',
  ] as const) {
    connection.on(name, (...args: unknown[]) => events.push([name, ...args]));
  }
  return events;
}

async function expectUnavailable(promise: Promise<BackendConnection>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: BackendUnavailableError) => {
    assert.equal(error.name, 'BackendUnavailableError');
    assert.equal(error.code, 'backend-unavailable');
    assert.match(error.message, pattern);
    return true;
  });
}

/** A ws server the test scripts: it records what it receives and exposes the socket. */
class ScriptedBackend {
  readonly server: WebSocketServer;
  readonly received: (ToBackendMessage | Buffer)[] = [];
  socket: WebSocket | undefined;

  private constructor(server: WebSocketServer) {
    this.server = server;
    server.on('connection', (ws) => {
      this.socket = ws;
      ws.on('message', (data, isBinary) => {
        this.received.push(isBinary ? (data as Buffer) : (JSON.parse(String(data)) as ToBackendMessage));
      });
    });
  }

  static async start(handleProtocols?: (protocols: Set<string>) => string | false): Promise<ScriptedBackend> {
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      ...(handleProtocols && { handleProtocols }),
    });
    await once(server, 'listening');
    return new ScriptedBackend(server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/calls?token=secret`;
  }

  get messages(): ToBackendMessage[] {
    return this.received.filter((item): item is ToBackendMessage => !Buffer.isBuffer(item));
  }

  async close(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A TCP server that reads and answers nothing: a handshake that never completes. */
async function silentServer(): Promise<{ server: Server; sockets: Set<Socket>; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.resume(); // read (and discard), so the client's close is seen
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, sockets, port: (server.address() as AddressInfo).port };
}

/**
 * A TCP server that completes the WebSocket handshake by hand, then never reads again: no pong, no
 * close frame, and a kernel buffer that fills up. (Not reading, it does not see the client go either:
 * the test destroys its sockets.)
 */
async function deafServer(): Promise<{ server: Server; sockets: Set<Socket>; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      const key = /sec-websocket-key: *(.+)\r\n/i.exec(head)?.[1]?.trim() ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
      );
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, sockets, port: (server.address() as AddressInfo).port };
}

/** Handles and timers of this process, by type (see process.getActiveResourcesInfo). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

describe('BackendConnection with the echo agent', () => {
  const DELAY_MS = 200;
  let agent: EchoAgent;
  let url: string;

  before(async () => {
    agent = await startEchoAgent({ port: 0, delayMs: DELAY_MS, markEveryMs: 100, logger });
    url = `ws://127.0.0.1:${agent.port}/`;
  });
  after(() => agent.close());

  test('audio comes back unchanged, each frame ≈ delayMs after it was sent', async () => {
    const connection = await BackendConnection.open(options(url));
    const sentAt = new Map<number, number>();
    const delays: number[] = [];
    const echoed: Buffer[] = [];
    connection.on('audio', (pcm) => {
      const n = pcm.readInt16LE(0);
      delays.push(performance.now() - sentAt.get(n)!);
      echoed.push(Buffer.from(pcm));
    });
    for (let n = 1; n <= 10; n++) {
      sentAt.set(n, performance.now());
      assert.ok(connection.sendAudio(frame(n)));
      await sleep(20);
    }
    await until(() => echoed.length === 10);
    assert.deepEqual(
      echoed,
      Array.from({ length: 10 }, (_, i) => frame(i + 1)),
    );
    for (const delay of delays) {
      assert.ok(delay >= DELAY_MS - 1 && delay < DELAY_MS + 80, `echo after ${delay.toFixed(1)} ms`);
    }
    assert.equal(connection.counters.audioFramesSent, 10);
    assert.equal(connection.counters.audioBytesSent, 10 * FRAME);
    assert.equal(connection.counters.audioMessagesReceived, 10);
    assert.equal(connection.counters.audioBytesReceived, 10 * FRAME);
    await connection.end('client-hangup');
  });

  test('data-channel messages come back, text prefixed, binary intact', async () => {
    const connection = await BackendConnection.open(options(url));
    const events = record(connection);
    connection.sendDataChannel('chat', 'hello');
    connection.sendDataChannel('bin', Buffer.from([0, 1, 254, 255]));
    await until(() => events.length === 2);
    assert.deepEqual(events, [
      ['datachannel', { label: 'chat', data: 'echo: hello' }],
      ['datachannel', { label: 'bin', data: Buffer.from([0, 1, 254, 255]) }],
    ]);
    await connection.end('client-hangup');
  });

  test('mark round trip: the mark follows its audio, the answer is acknowledged', async () => {
    const connection = await BackendConnection.open(options(url));
    const events = record(connection);
    // 5 frames = 100 ms = markEveryMs: the agent sends mark echo-1 after the 5th echoed frame.
    for (let n = 1; n <= 5; n++) connection.sendAudio(frame(n));
    await until(() => events.some(([name]) => name === 'mark'));
    assert.deepEqual(
      events.map(([name, value]) => (name === 'audio' ? `audio ${(value as Buffer).readInt16LE(0)}` : name)),
      ['audio 1', 'audio 2', 'audio 3', 'audio 4', 'audio 5', 'mark'],
    );
    assert.deepEqual(events.at(-1), ['mark', 'echo-1']);
    // As the transceiver would once those 100 ms have been played.
    connection.sendMark('echo-1');
    await until(() => events.some(([name]) => name === 'event'));
    const [, event] = events.find(([name]) => name === 'event')!;
    assert.equal((event as { name: string }).name, 'mark-played');
    assert.equal((event as { data: { name: string } }).data.name, 'echo-1');
    await connection.end('client-hangup');
  });

  test('end(): closed once with 1000, local; idempotent; nothing sent afterwards', async () => {
    const connection = await BackendConnection.open(options(url));
    const events = record(connection);
    await until(() => agent.connections === 1);
    const ending = connection.end('client-hangup');
    assert.equal(connection.state, 'closing');
    await Promise.all([ending, connection.end('shutdown'), connection.close()]);
    assert.equal(connection.state, 'closed');
    assert.deepEqual(events, [['closed', { code: 1000, reason: '', local: true }]]);
    assert.equal(connection.sendAudio(frame(1)), false);
    assert.equal(connection.sendEvent('connected'), false);
    assert.equal(connection.sendMark('x'), false);
    assert.equal(connection.sendDataChannel('a', 'b'), false);
    await until(() => agent.connections === 0);
  });

  test('nothing is left open after a call (sockets, timers)', async () => {
    const baseline = resources();
    const connection = await BackendConnection.open(options(url, { pingIntervalMs: 50 }));
    connection.sendAudio(frame(1));
    await once(connection, 'audio');
    await connection.end('client-hangup');
    await until(() => agent.connections === 0);
    await until(() => {
      const now = resources();
      return ['TCPSocketWrap', 'Timeout'].every((type) => (now.get(type) ?? 0) <= (baseline.get(type) ?? 0));
    });
  });
});

describe('BackendConnection with a scripted backend', () => {
  let backend: ScriptedBackend;

  before(async () => {
    backend = await ScriptedBackend.start();
  });
  after(() => backend.close());

  async function open(extra: Partial<BackendConnectionOptions> = {}) {
    backend.received.length = 0;
    backend.socket = undefined;
    const connection = await BackendConnection.open(options(backend.url, extra));
    await until(() => backend.socket !== undefined && backend.received.length > 0);
    return { connection, events: record(connection), server: backend.socket! };
  }

  test('start is the first message, with the session, audio format and metadata', async () => {
    const { connection, server } = await open();
    assert.equal(server.protocol, SUBPROTOCOL);
    connection.sendEvent('connected');
    connection.sendEvent('quality', { rttMs: 12, jitterMs: 2, lossRatio: 0 });
    connection.sendAudio(frame(9));
    await connection.end('media-timeout');
    await until(() => backend.received.length === 5);
    assert.deepEqual(backend.received, [
      {
        type: 'start',
        sessionId: 'sess-1',
        audio: { encoding: 'pcm16le', sampleRate: 16000, channels: 1, frameMs: 20 },
        metadata: { user: 'alice' },
      },
      { type: 'event', name: 'connected' },
      { type: 'event', name: 'quality', data: { rttMs: 12, jitterMs: 2, lossRatio: 0 } },
      frame(9),
      { type: 'end', reason: 'media-timeout' },
    ]);
  });

  test('clear, mark, event and label-less datachannel become events; unknown types are ignored', async () => {
    const { connection, events, server } = await open();
    server.send(encodeControl({ type: 'clear' }));
    server.send('{"type":"hologram","fps":60}');
    server.send(encodeControl({ type: 'mark', name: 'sentence-1' }));
    server.send(encodeControl({ type: 'event', name: 'transcript', data: { text: 'hi' } }));
    server.send(encodeControl({ type: 'datachannel', data: 'to the first channel' }));
    server.send(encodeControl({ type: 'error', code: 'queue-overflow', message: 'x' }));
    server.send(Buffer.alloc(0));
    await until(() => events.length === 4);
    await sleep(20);
    assert.deepEqual(events, [
      ['clear'],
      ['mark', 'sentence-1'],
      ['event', { name: 'transcript', data: { text: 'hi' } }],
      ['datachannel', { label: undefined, data: 'to the first channel' }],
    ]);
    assert.equal(connection.counters.unknownMessages, 1);
    assert.equal(connection.counters.errorsReceived, 1);
    assert.equal(connection.counters.controlMessagesReceived, 6);
    assert.equal(connection.counters.audioMessagesReceived, 0);
    await connection.end('client-hangup');
  });

  test('odd-length audio is answered with bad-audio and dropped; bad JSON with bad-message', async () => {
    const { connection, events, server } = await open();
    server.send(Buffer.alloc(641));
    server.send('{"type":"mark"');
    server.send('{"type":"mark","name":""}');
    server.send(Buffer.alloc(4, 1));
    await until(() => events.length === 4);
    assert.deepEqual(
      events.map(([name, value]) => [name, (value as { code?: string }).code ?? (value as Buffer).length]),
      [
        ['protocolError', 'bad-audio'],
        ['protocolError', 'bad-message'],
        ['protocolError', 'bad-message'],
        ['audio', 4],
      ],
    );
    await until(() => backend.messages.filter((m) => m.type === 'error').length === 3);
    const errors = backend.messages.filter((m) => m.type === 'error');
    assert.deepEqual(
      errors.map((m) => m.code),
      ['bad-audio', 'bad-message', 'bad-message'],
    );
    assert.match(errors[0]!.message, /641 bytes/);
    assert.equal(connection.counters.badAudio, 1);
    assert.equal(connection.counters.badMessages, 2);
    assert.equal(connection.counters.audioMessagesReceived, 1);
    await connection.end('client-hangup');
  });

  test('end from the backend: end event, then the connection closes itself (1000)', async () => {
    const { connection, events, server } = await open();
    // As a call does: ending the call ends the connection; that must send nothing more.
    connection.on('end', () => {
      assert.equal(connection.state, 'closing');
      void connection.end('client-hangup');
    });
    server.send(encodeControl({ type: 'end', reason: 'goodbye' }));
    server.send(encodeControl({ type: 'mark', name: 'too-late' }));
    await once(connection, 'closed');
    assert.deepEqual(events, [
      ['end', 'goodbye'],
      ['closed', { code: 1000, reason: '', local: false }],
    ]);
    // No `end` of its own.
    assert.deepEqual(
      backend.messages.map((m) => m.type),
      ['start'],
    );
  });

  test('backend closing mid-call: closed once, with its code', async () => {
    const { connection, events, server } = await open();
    server.close(1011, 'model crashed');
    await once(connection, 'closed');
    await connection.end('client-hangup');
    await sleep(20);
    assert.deepEqual(events, [['closed', { code: 1011, reason: 'model crashed', local: false }]]);
  });

  test('close(1011): the backend sees 1011 and no end', async () => {
    const { connection, events, server } = await open();
    const serverClosed = once(server, 'close');
    await connection.close(1011, 'negotiation failed');
    const [code, reason] = await serverClosed;
    assert.equal(code, 1011);
    assert.equal(String(reason), 'negotiation failed');
    assert.deepEqual(events, [['closed', { code: 1011, reason: 'negotiation failed', local: true }]]);
    assert.deepEqual(
      backend.messages.map((m) => m.type),
      ['start'],
    );
  });

  test('backend connection dropped (no close frame): closed once with 1006', async () => {
    const { connection, events, server } = await open();
    server.terminate();
    await once(connection, 'closed');
    await connection.close();
    await sleep(20);
    assert.deepEqual(events, [['closed', { code: 1006, reason: '', local: false }]]);
  });

  test('paused: events sent right after start are held until resume(), closed included', async () => {
    const { connection, server } = await open({ paused: true });
    assert.equal(connection.paused, true);
    server.send(Buffer.alloc(640, 1));
    server.send(encodeControl({ type: 'mark', name: 'first' }));
    server.send(Buffer.alloc(3));
    server.close(1000);
    await until(() => connection.state === 'closed');
    // Sending while paused worked: the backend answered the odd-length audio before it closed.
    assert.deepEqual(
      backend.messages.map((m) => (m.type === 'error' ? m.code : m.type)),
      ['start', 'bad-audio'],
    );
    const events = record(connection);
    await sleep(20);
    assert.equal(events.length, 0);
    connection.resume();
    connection.resume();
    assert.equal(connection.paused, false);
    assert.deepEqual(
      events.map(([name]) => name),
      ['audio', 'mark', 'protocolError', 'closed'],
    );
  });

  test('a listener that throws is contained', async () => {
    const { connection, events, server } = await open();
    connection.on('mark', () => {
      throw new Error('listener bug');
    });
    server.send(encodeControl({ type: 'mark', name: 'a' }));
    server.send(encodeControl({ type: 'clear' }));
    await until(() => events.length === 2);
    assert.deepEqual(events, [['mark', 'a'], ['clear']]);
    await connection.end('client-hangup');
  });

  test('sendAudio refuses odd lengths (a caller bug)', async () => {
    const { connection } = await open();
    assert.throws(() => connection.sendAudio(Buffer.alloc(3)), RangeError);
    await connection.end('client-hangup');
  });
});

describe('BackendConnection: backend unavailable', () => {
  let baseline: Map<string, number>;
  before(() => {
    baseline = resources();
  });
  // Every failure below tears its socket and timers down before rejecting.
  after(async () => {
    await until(() => {
      const now = resources();
      return ['TCPSocketWrap', 'Timeout'].every((type) => (now.get(type) ?? 0) <= (baseline.get(type) ?? 0));
    });
  });

  test('nothing listening on the port', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    await expectUnavailable(BackendConnection.open(options(`ws://127.0.0.1:${port}/`)), /ECONNREFUSED/);
  });

  test('a server that never completes the handshake: rejected at the timeout, socket closed', async () => {
    const { server, sockets, port } = await silentServer();
    try {
      const began = performance.now();
      await expectUnavailable(
        BackendConnection.open(options(`ws://127.0.0.1:${port}/`, { connectTimeoutMs: 300 })),
        /no connection within 300 ms/,
      );
      const elapsed = performance.now() - began;
      assert.ok(elapsed >= 299 && elapsed < 600, `rejected after ${elapsed.toFixed(0)} ms`);
      await until(() => sockets.size === 0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a backend that does not accept voice-edge.v1', async () => {
    const refusing = await ScriptedBackend.start(() => false);
    const other = await ScriptedBackend.start(() => 'voice-edge.v2');
    try {
      await expectUnavailable(BackendConnection.open(options(refusing.url)), /no subprotocol/);
      await expectUnavailable(BackendConnection.open(options(other.url)), /invalid subprotocol/);
      await until(() => refusing.server.clients.size === 0 && other.server.clients.size === 0);
    } finally {
      await refusing.close();
      await other.close();
    }
  });

  test('an HTTP error instead of an upgrade', async () => {
    const server = createHttpServer((_request, response) => {
      response.writeHead(503).end();
    });
    server.on('upgrade', (_request, socket: Socket) => {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      await expectUnavailable(BackendConnection.open(options(`ws://127.0.0.1:${port}/`)), /503/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('an invalid URL', async () => {
    await expectUnavailable(
      BackendConnection.open(options('http//nope')),
      /cannot connect to \(invalid URL\)/,
    );
    await expectUnavailable(BackendConnection.open(options('ftp://example.com/')), /ftp:/);
  });

  test('the error message names the backend without query or credentials', async () => {
    const { server, port } = await silentServer();
    try {
      await assert.rejects(
        BackendConnection.open(
          options(`ws://user:pw@127.0.0.1:${port}/b?token=secret`, { connectTimeoutMs: 50 }),
        ),
        (error: Error) => {
          assert.match(error.message, new RegExp(`ws://127\\.0\\.0\\.1:${port}/b:`));
          assert.doesNotMatch(error.message, /secret|pw/);
          return true;
        },
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('BackendConnection: a backend that stops reading', () => {
  test('back-pressure drops caller audio and counts it; close times out and destroys the socket', async () => {
    const { server, sockets, port } = await deafServer();
    try {
      const connection = await BackendConnection.open(
        options(`ws://127.0.0.1:${port}/`, {
          maxBufferedBytes: 64 * 1024,
          closeTimeoutMs: 200,
          pingIntervalMs: 0,
        }),
      );
      const events = record(connection);
      const big = Buffer.alloc(frameBytes(48000));
      let sent = 0;
      // The kernel's loopback buffers take a few MB before ws has to queue.
      for (let i = 0; i < 40_000 && connection.counters.audioFramesDropped === 0; i++) {
        if (connection.sendAudio(big)) sent++;
        if (i % 500 === 0) await sleep(1);
      }
      assert.ok(connection.counters.audioFramesDropped > 0, 'some audio was dropped');
      assert.equal(connection.counters.audioFramesSent, sent);
      assert.ok(connection.bufferedAmount > 64 * 1024);
      assert.equal(connection.sendAudio(big), false);
      // Control messages are never dropped.
      assert.equal(connection.sendEvent('connected'), true);
      const began = performance.now();
      await connection.end('client-hangup');
      const elapsed = performance.now() - began;
      assert.ok(elapsed >= 150 && elapsed < 1000, `closed after ${elapsed.toFixed(0)} ms`);
      assert.deepEqual(events, [['closed', { code: 1006, reason: '', local: true }]]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('with the default interval, a backend that stops answering pings is gone within 5 s', async () => {
    const { server, sockets, port } = await deafServer();
    try {
      const connection = await BackendConnection.open(options(`ws://127.0.0.1:${port}/`));
      const began = performance.now();
      await once(connection, 'closed');
      const elapsed = performance.now() - began;
      assert.ok(
        elapsed >= DEFAULT_PING_INTERVAL_MS &&
          elapsed <= 2 * DEFAULT_PING_INTERVAL_MS + 500 &&
          elapsed < 5_000,
        `terminated after ${elapsed.toFixed(0)} ms`,
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a backend that does not answer pings is terminated', async () => {
    const { server, sockets, port } = await deafServer();
    try {
      const connection = await BackendConnection.open(
        options(`ws://127.0.0.1:${port}/`, { pingIntervalMs: 50 }),
      );
      const began = performance.now();
      const [closed] = await once(connection, 'closed');
      const elapsed = performance.now() - began;
      assert.deepEqual(closed, { code: 1006, reason: '', local: false });
      assert.ok(elapsed >= 90 && elapsed < 500, `terminated after ${elapsed.toFixed(0)} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('BackendConnection speaking Twilio Media Streams', () => {
  let backend: ScriptedBackend;

  before(async () => {
    // A Twilio agent asks for no subprotocol and selects none.
    backend = await ScriptedBackend.start(() => false);
  });
  after(() => backend.close());

  function twilioOptions(url: string): BackendConnectionOptions {
    return {
      ...options(url),
      wire: createBackendWire({
        protocol: 'twilio-media-streams',
        sessionId: 'sess-1',
        sampleRate: 8000,
        metadata: { requestId: 'req-7', region: 'eu' },
        accountSid: DEFAULT_ACCOUNT_SID,
      }),
    };
  }

  async function open() {
    backend.received.length = 0;
    backend.socket = undefined;
    const connection = await BackendConnection.open(twilioOptions(backend.url));
    await until(() => backend.socket !== undefined && backend.received.length >= 2);
    return { connection, events: record(connection), server: backend.socket! };
  }

  test('connected, start, media with μ-law and counters, mark, stop: as Twilio sends them', async () => {
    const { connection, server } = await open();
    assert.equal(server.protocol, '');
    const pcm = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) pcm.writeInt16LE(i * 100 - 8000, i * 2);
    assert.equal(connection.sendAudio(pcm), true);
    assert.equal(connection.sendAudio(pcm), true);
    assert.equal(connection.sendEvent('connected'), false, 'Twilio has no events');
    assert.equal(connection.sendDataChannel('chat', 'hi'), false, 'nor data channels');
    assert.equal(connection.sendMark('greeting'), true);
    await connection.end('client-hangup');
    await until(() => backend.received.length === 6);
    // biome-ignore lint/suspicious/noExplicitAny: JSON as received, compared field by field
    const [connected, start, media1, media2, mark, stop] = backend.received as unknown as any[];
    assert.deepEqual(connected, { event: 'connected', protocol: 'Call', version: '1.0.0' });
    const streamSid = start!.streamSid as string;
    const callSid = start!.start.callSid as string;
    assert.match(streamSid, /^MZ[0-9a-f]{32}$/);
    assert.match(callSid, /^CA[0-9a-f]{32}$/);
    assert.deepEqual(start, {
      event: 'start',
      sequenceNumber: '1',
      start: {
        accountSid: DEFAULT_ACCOUNT_SID,
        streamSid,
        callSid,
        tracks: ['inbound'],
        customParameters: { requestId: 'req-7', region: 'eu', sessionId: 'sess-1' },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid,
    });
    assert.equal(media1!.sequenceNumber, '2');
    assert.deepEqual(media1!.media.track, 'inbound');
    assert.deepEqual([media1!.media.chunk, media1!.media.timestamp], ['1', '0']);
    assert.deepEqual(
      [media2!.sequenceNumber, media2!.media.chunk, media2!.media.timestamp],
      ['3', '2', '20'],
    );
    const mulaw = Buffer.from(media1!.media.payload as string, 'base64');
    assert.equal(mulaw.length, 160);
    for (let i = 0; i < 160; i++) assert.equal(mulaw[i], encodeMulawSample(i * 100 - 8000));
    assert.deepEqual(mark, { event: 'mark', sequenceNumber: '4', streamSid, mark: { name: 'greeting' } });
    assert.deepEqual(stop, {
      event: 'stop',
      sequenceNumber: '5',
      streamSid,
      stop: { accountSid: DEFAULT_ACCOUNT_SID, callSid },
    });
  });

  test('media, mark and clear from the agent become audio, mark and clear; the rest is counted and dropped', async () => {
    const { connection, events, server } = await open();
    const codes = Buffer.from([0xff, 0x80, 0x00, 0x7f]);
    server.send(
      JSON.stringify({ event: 'media', streamSid: 'MZx', media: { payload: codes.toString('base64') } }),
    );
    server.send(JSON.stringify({ event: 'mark', streamSid: 'MZx', mark: { name: 'm1' } }));
    server.send(JSON.stringify({ event: 'clear', streamSid: 'MZx' }));
    server.send(JSON.stringify({ event: 'media', media: { payload: '' } })); // nothing to play
    server.send('{"event":"media","media":{"payload":"not base64!"}}');
    server.send('{"event":"mark","mark":{}}');
    server.send('{"event":"hologram"}');
    server.send('not json');
    server.send(Buffer.from([1, 2, 3, 4]));
    await until(() => events.length >= 7);
    await sleep(20);
    const audio = Buffer.alloc(8);
    for (const [i, sample] of [0, 32124, -32124, 0].entries()) audio.writeInt16LE(sample, i * 2);
    const messageOf = (event: unknown[] | undefined) =>
      (event?.[1] as { message: string } | undefined)?.message ?? '';
    assert.deepEqual(events, [
      ['audio', audio],
      ['mark', 'm1'],
      ['clear'],
      ['protocolError', { code: 'bad-audio', message: 'media.payload: must be base64' }],
      ['protocolError', { code: 'bad-message', message: messageOf(events[4]) }],
      ['protocolError', { code: 'bad-message', message: messageOf(events[5]) }],
      [
        'protocolError',
        { code: 'bad-message', message: 'binary message: Media Streams messages are JSON text' },
      ],
    ]);
    assert.match(messageOf(events[4]), /^mark: /);
    assert.match(messageOf(events[5]), /^not JSON/);
    assert.deepEqual(
      {
        badAudio: connection.counters.badAudio,
        badMessages: connection.counters.badMessages,
        unknownMessages: connection.counters.unknownMessages,
        audioMessagesReceived: connection.counters.audioMessagesReceived,
      },
      { badAudio: 1, badMessages: 3, unknownMessages: 1, audioMessagesReceived: 1 },
    );
    // Twilio has no error message: the agent was told nothing (only connected and start arrived).
    assert.equal(backend.received.length, 2);
    await connection.end('client-hangup');
  });
});
