// The echo agent's server: an HTTP server that upgrades requests offering the voice-edge.v1
// subprotocol (others get 400, plain HTTP gets 426) and runs one EchoSession per WebSocket, with one
// timer per connection for the delay line.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type RawData, type ServerOptions, type WebSocket, WebSocketServer } from 'ws';
import { encodeControl, SUBPROTOCOL } from '../../protocol/backend.ts';
import { formatHostPort } from '../../protocol/host-port.ts';
import { type EchoOutput, EchoSession } from './echo-session.ts';

export interface EchoAgentOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 = any free port (read it from the result). */
  readonly port: number;
  /** How long each frame waits before it is played back. */
  readonly delayMs: number;
  /** A mark after every this much echoed audio; default 1000, 0 = none. */
  readonly markEveryMs?: number;
  readonly logger: Logger;
}

export interface EchoAgent {
  readonly port: number;
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Stops listening, ends every call (`end` with reason "shutdown", then close 1000) and resolves when all is closed. Idempotent. */
  close(): Promise<void>;
}

/** How long a closing WebSocket may take before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;

function offersSubprotocol(request: IncomingMessage): boolean {
  const header = request.headers['sec-websocket-protocol'];
  return header?.split(',').some((protocol) => protocol.trim() === SUBPROTOCOL) ?? false;
}

function refuse(socket: Duplex, status: string, text: string): void {
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
  // end() flushes, then the peer or this side closes; do not wait for a slow peer.
  const timer = setTimeout(() => socket.destroy(), 1000);
  socket.once('close', () => clearTimeout(timer));
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function serve(ws: WebSocket, session: EchoSession, logger: Logger): void {
  let timer: NodeJS.Timeout | undefined;
  const apply = (outputs: EchoOutput[]) => {
    for (const output of outputs) {
      if (ws.readyState !== ws.OPEN) return;
      if (output.kind === 'send') ws.send(output.data, { binary: typeof output.data !== 'string' });
      else ws.close(output.code, output.reason);
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = undefined;
    const dueAt = session.nextDueAt();
    if (dueAt === undefined || ws.readyState !== ws.OPEN) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        apply(session.takeDue(performance.now()));
        schedule();
      },
      Math.max(0, dueAt - performance.now()),
    );
  };
  ws.on('message', (data, isBinary) => {
    const now = performance.now();
    const bytes = toBuffer(data);
    apply(isBinary ? session.onBinary(bytes, now) : session.onText(bytes.toString('utf8'), now));
    schedule();
  });
  ws.on('error', (error) => logger.warn({ err: error }, 'socket error'));
  ws.on('close', (code, reason) => {
    clearTimeout(timer);
    timer = undefined;
    logger.info({ code, reason: reason.toString('utf8'), ...session.stats }, 'connection closed');
  });
}

export async function startEchoAgent(options: EchoAgentOptions): Promise<EchoAgent> {
  const logger = options.logger;
  const clients = new Set<WebSocket>();
  const serverOptions: ServerOptions & { closeTimeout: number } = {
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    handleProtocols: () => SUBPROTOCOL,
    // ws ≥ 8.18 honours closeTimeout (its types do not list it yet); the default is 30 s.
    closeTimeout: CLOSE_TIMEOUT_MS,
  };
  const wss = new WebSocketServer(serverOptions);
  let closing: Promise<void> | undefined;
  const server = createServer((_request, response) => {
    response.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
    response.end(`a voice-edge backend: connect with WebSocket, subprotocol ${SUBPROTOCOL}\n`);
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closing !== undefined) {
      refuse(socket, '503 Service Unavailable', 'shutting down\n');
      return;
    }
    if (!offersSubprotocol(request)) {
      logger.info({ offered: request.headers['sec-websocket-protocol'] }, 'refused: no voice-edge.v1');
      refuse(socket, '400 Bad Request', `subprotocol ${SUBPROTOCOL} required\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const remote = formatHostPort(String(request.socket.remoteAddress), Number(request.socket.remotePort));
      const connectionLogger = logger.child({ remote });
      clients.add(ws);
      ws.once('close', () => clients.delete(ws));
      connectionLogger.info('connection opened');
      const session = new EchoSession({
        delayMs: options.delayMs,
        markEveryMs: options.markEveryMs ?? 1000,
        logger: connectionLogger,
      });
      serve(ws, session, connectionLogger);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host ?? '127.0.0.1', port, delayMs: options.delayMs }, 'echo agent listening');

  return {
    port,
    get connections() {
      return clients.size;
    },
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(
          [...clients].map(
            (ws) =>
              new Promise<void>((resolve) => {
                ws.once('close', () => resolve());
                if (ws.readyState === ws.OPEN) ws.send(encodeControl({ type: 'end', reason: 'shutdown' }));
                ws.close(1000);
              }),
          ),
        );
        server.closeAllConnections();
        await serverClosed;
        logger.info('echo agent stopped');
      })();
      return closing;
    },
  };
}
