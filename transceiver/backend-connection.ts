// The transceiver's side of one call's backend WebSocket (docs/backend-protocol.md): opens it (with
// the protocol's subprotocol, if it has one), sends the protocol's opening messages, then carries the
// caller's audio and events to the backend and the backend's audio and commands back as typed events.
// What the messages look like is the BackendWire's (backend-wire.ts); the socket's life is the same
// for every protocol. It never throws from socket callbacks, and once `closed` has been emitted it
// holds no socket and no timer.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import WebSocket, { type ClientOptions, type RawData } from 'ws';
import {
  dataChannelMessage,
  dataChannelPayload,
  type EndReason,
  type ErrorCode,
  type FromBackendMessage,
  type ToBackendMessage,
} from '../protocol/backend.ts';
import type { BackendWire } from './backend-wire.ts';

/** Ping interval of a backend connection (ms); a backend that misses one pong is gone. */
export const DEFAULT_PING_INTERVAL_MS = 2_000;

/** Thrown by `BackendConnection.open` when no usable connection could be made. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
  readonly code = 'backend-unavailable';
}

export interface BackendConnectionOptions {
  /** `ws://` or `wss://` URL of the pool's backend. */
  readonly url: string;
  readonly sessionId: string;
  /** The backend protocol's messages (createBackendWire). */
  readonly wire: BackendWire;
  /** Covers DNS, TCP, TLS and the WebSocket handshake; default 5000. */
  readonly connectTimeoutMs?: number;
  readonly logger: Logger;
  /** Caller audio is dropped (and counted) while more than this is waiting in the socket; default 1 MiB. */
  readonly maxBufferedBytes?: number;
  /** Largest message accepted from the backend (bigger closes with 1009); default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** How long a close handshake may take before the socket is destroyed; default 2000. */
  readonly closeTimeoutMs?: number;
  /**
   * A ping this often; no pong by the next one terminates the connection (0 = never). Default 2000:
   * a backend that hangs (or a dead peer whose TCP connection stays up) is found within 4 s.
   */
  readonly pingIntervalMs?: number;
  /**
   * Hold every event, in order and `closed` included, until resume(): for an owner that attaches its
   * listeners only after further awaits (the backend may send audio right after `start`). Sending
   * works while paused. Default false: events flow from the next I/O turn after open() resolves.
   */
  readonly paused?: boolean;
}

/** Held backend audio beyond which a paused connection stops reading its socket. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

export interface BackendClosed {
  /** WebSocket close code (1006 when the connection dropped without a close frame). */
  readonly code: number;
  readonly reason: string;
  /** True when this side called end() or close() first. */
  readonly local: boolean;
}

export interface BackendProtocolError {
  readonly code: 'bad-message' | 'bad-audio';
  readonly message: string;
}

export interface BackendConnectionEvents {
  /**
   * Backend audio: PCM16LE mono at the session's rate, a non-empty even number of bytes. The Buffer
   * may share memory with the socket's chunk and need not be 2-byte aligned: copy it before viewing
   * it as an Int16Array.
   */
  audio: [pcm: Buffer];
  /** Barge-in: drop every queued, not yet played sample. */
  clear: [];
  /** Answer with sendMark(name) once the audio received before it has been played. */
  mark: [name: string];
  /** For the caller's data channel with that label (the first one when label is undefined). */
  datachannel: [message: { label: string | undefined; data: string | Buffer }];
  event: [event: { name: string; data: unknown }];
  /** The backend ended the call; the connection is already closing (1000), `closed` follows. */
  end: [reason: string | undefined];
  /** The socket is gone (either side, or an error). Emitted exactly once. */
  closed: [closed: BackendClosed];
  /** The backend sent something invalid; it has been told with an `error` and the message dropped. */
  protocolError: [error: BackendProtocolError];
}

export interface BackendConnectionCounters {
  audioFramesSent: number;
  audioBytesSent: number;
  /** Caller frames dropped because the socket was backed up (see maxBufferedBytes). */
  audioFramesDropped: number;
  audioMessagesReceived: number;
  audioBytesReceived: number;
  controlMessagesReceived: number;
  /** Invalid audio from the backend (answered with `bad-audio` where the protocol can, dropped). */
  badAudio: number;
  /** Invalid control messages from the backend (answered with `bad-message` where the protocol can, dropped). */
  badMessages: number;
  /** Control messages of a type this side does not know (ignored). */
  unknownMessages: number;
  /** `error` messages from the backend. */
  errorsReceived: number;
}

export type BackendConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

/** The URL without credentials or query (which may carry tokens), for logs and errors. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class BackendConnection extends EventEmitter<BackendConnectionEvents> {
  readonly sessionId: string;
  readonly #ws: WebSocket;
  readonly #wire: BackendWire;
  readonly #logger: Logger;
  readonly #maxBufferedBytes: number;
  readonly #counters: BackendConnectionCounters = {
    audioFramesSent: 0,
    audioBytesSent: 0,
    audioFramesDropped: 0,
    audioMessagesReceived: 0,
    audioBytesReceived: 0,
    controlMessagesReceived: 0,
    badAudio: 0,
    badMessages: 0,
    unknownMessages: 0,
    errorsReceived: 0,
  };
  #state: BackendConnectionState = 'connecting';
  #local = false;
  #dropping = false;
  #lastError: Error | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #pongPending = false;
  readonly #closed: Promise<void>;
  #resolveClosed!: () => void;
  #settleOpen: ((error: Error | undefined) => void) | undefined;
  /** Events waiting for resume(); undefined when not paused. */
  #held: (() => void)[] | undefined;
  #heldBytes = 0;

  /**
   * Opens the WebSocket, sends `start` and resolves once it is on its way. Rejects with a
   * BackendUnavailableError (code `backend-unavailable`) on refusal, handshake failure (including a
   * missing or other subprotocol) or timeout, after the socket has been torn down. Attach listeners
   * right after the await: events start with the next I/O turn.
   */
  static async open(options: BackendConnectionOptions): Promise<BackendConnection> {
    const where = safeUrl(options.url);
    const logger = options.logger.child({ sessionId: options.sessionId, backend: where });
    const socketOptions: ClientOptions & { closeTimeout: number } = {
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: options.maxMessageBytes ?? 16 * 1024 * 1024,
      // ws ≥ 8.18 honours closeTimeout (its types do not list it yet); the default is 30 s.
      closeTimeout: options.closeTimeoutMs ?? 2000,
    };
    let ws: WebSocket;
    try {
      ws = new WebSocket(options.url, options.wire.subprotocol ?? [], socketOptions);
    } catch (cause) {
      throw new BackendUnavailableError(`cannot connect to ${where}: ${(cause as Error).message}`, { cause });
    }
    const connection = new BackendConnection(ws, logger, options);
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const failure = await new Promise<Error | undefined>((resolve) => {
      connection.#settleOpen = resolve;
      connection.#connectTimer = setTimeout(() => {
        connection.#lastError = new Error(`no connection within ${connectTimeoutMs} ms`);
        ws.terminate();
      }, connectTimeoutMs);
    });
    if (failure !== undefined) {
      logger.warn({ err: failure }, 'backend unavailable');
      throw new BackendUnavailableError(`cannot connect to ${where}: ${failure.message}`, { cause: failure });
    }
    return connection;
  }

  private constructor(ws: WebSocket, logger: Logger, options: BackendConnectionOptions) {
    super();
    this.sessionId = options.sessionId;
    this.#ws = ws;
    this.#wire = options.wire;
    this.#logger = logger;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    if (options.paused === true) this.#held = [];
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    ws.on('open', () => this.#onOpen(options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS));
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => {
      this.#pongPending = false;
    });
    ws.on('error', (error) => {
      this.#lastError ??= error;
      if (this.#state !== 'connecting') this.#logger.warn({ err: error }, 'backend socket error');
    });
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
  }

  get state(): BackendConnectionState {
    return this.#state;
  }

  /** Live counters (read them, do not write). */
  get counters(): Readonly<BackendConnectionCounters> {
    return this.#counters;
  }

  /** True while events are held (opened with `paused: true` and not resumed yet). */
  get paused(): boolean {
    return this.#held !== undefined;
  }

  /** Delivers the held events, in order, then lets events flow. Idempotent. */
  resume(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    this.#heldBytes = 0;
    if (this.#ws.isPaused) this.#ws.resume();
    for (const deliver of held) deliver();
  }

  /** Bytes queued in the socket, not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /**
   * One frame of the caller's audio (PCM16LE mono, even length). Returns false when it was not sent:
   * the connection is not open, or the socket holds more than maxBufferedBytes (counted as dropped).
   */
  sendAudio(pcm: Buffer): boolean {
    if (pcm.length % 2 !== 0) throw new RangeError(`PCM16 audio needs an even length, got ${pcm.length}`);
    if (this.#state !== 'open') return false;
    if (this.#ws.bufferedAmount > this.#maxBufferedBytes) {
      this.#counters.audioFramesDropped++;
      if (!this.#dropping) {
        this.#dropping = true;
        this.#logger.warn(
          { bufferedAmount: this.#ws.bufferedAmount },
          'backend is slow: dropping caller audio',
        );
      }
      return false;
    }
    if (this.#dropping) {
      this.#dropping = false;
      this.#logger.info({ dropped: this.#counters.audioFramesDropped }, 'backend caught up');
    }
    this.#ws.send(this.#wire.audio(pcm));
    this.#counters.audioFramesSent++;
    this.#counters.audioBytesSent += pcm.length;
    return true;
  }

  /**
   * An `event` (`connected`, `ice-restart`, `quality`…). `data` must be JSON-serializable. This and
   * the other senders return false when the message was not sent: the connection is not open, or the
   * protocol has no such message (Twilio's has no events, data channels or errors).
   */
  sendEvent(name: string, data?: unknown): boolean {
    return this.#send(data === undefined ? { type: 'event', name } : { type: 'event', name, data });
  }

  /** A message from the caller's data channel (binary data goes as base64). */
  sendDataChannel(label: string, data: string | Buffer): boolean {
    return this.#send(dataChannelMessage(label, data));
  }

  /** An `error` about what the backend sent (e.g. `queue-overflow`). */
  sendError(code: ErrorCode, message: string): boolean {
    return this.#send({ type: 'error', code, message });
  }

  /** Tells the backend that the audio before its mark `name` has been played. */
  sendMark(name: string): boolean {
    return this.#send({ type: 'mark', name });
  }

  /**
   * Sends `end` and closes with 1000. Idempotent (later calls only wait). Resolves once `closed` has
   * been emitted, at most closeTimeoutMs later.
   */
  end(reason: EndReason): Promise<void> {
    if (this.#state === 'open') {
      this.#send({ type: 'end', reason });
      this.#local = true;
      this.#closeSocket(1000);
    }
    return this.#closed;
  }

  /** Closes without an `end` message (e.g. 1011 when this side failed). Idempotent; resolves like end(). */
  close(code = 1000, reason = ''): Promise<void> {
    if (this.#state === 'open') {
      this.#local = true;
      this.#closeSocket(code, reason);
    }
    return this.#closed;
  }

  #send(message: ToBackendMessage): boolean {
    if (this.#state !== 'open') return false;
    const data = this.#wire.control(message);
    if (data === undefined) return false;
    this.#ws.send(data);
    return true;
  }

  #closeSocket(code: number, reason = ''): void {
    this.#state = 'closing';
    this.#stopPing();
    if (this.#ws.isPaused) this.#ws.resume(); // to read the backend's close frame
    this.#ws.close(code, reason);
  }

  #onOpen(pingIntervalMs: number): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    const subprotocol = this.#wire.subprotocol;
    if (subprotocol !== undefined && this.#ws.protocol !== subprotocol) {
      // ws already refuses this; kept so the contract does not rest on a library detail.
      this.#lastError = new Error(`backend chose subprotocol "${this.#ws.protocol}"`);
      this.#ws.terminate();
      return;
    }
    this.#state = 'open';
    for (const message of this.#wire.opening()) this.#ws.send(message);
    if (pingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => this.#ping(), pingIntervalMs);
    }
    this.#logger.debug('backend connected');
    this.#settleOpen?.(undefined);
    this.#settleOpen = undefined;
  }

  #ping(): void {
    if (this.#pongPending) {
      this.#logger.warn('backend did not answer a ping: terminating');
      this.#ws.terminate();
      return;
    }
    this.#pongPending = true;
    this.#ws.ping();
  }

  #stopPing(): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  #onClose(code: number, reason: string): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#stopPing();
    const wasConnecting = this.#state === 'connecting';
    this.#state = 'closed';
    if (wasConnecting) {
      this.#settleOpen?.(this.#lastError ?? new Error(`closed during the handshake (${code})`));
      this.#settleOpen = undefined;
      this.#resolveClosed();
      return;
    }
    this.#logger.debug({ code, reason, local: this.#local }, 'backend connection closed');
    this.#emit('closed', { code, reason, local: this.#local });
    this.#resolveClosed();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#state !== 'open') return;
    const input = this.#wire.decode(toBuffer(data), isBinary);
    switch (input.kind) {
      case 'audio':
        this.#counters.audioMessagesReceived++;
        this.#counters.audioBytesReceived += input.pcm.length;
        this.#emit('audio', input.pcm);
        return;
      case 'none':
        return;
      case 'invalid':
        if (!isBinary) this.#counters.controlMessagesReceived++;
        if (input.code === 'bad-audio') this.#counters.badAudio++;
        else this.#counters.badMessages++;
        this.#protocolError(input.code, input.error);
        return;
      case 'unknown':
        this.#counters.controlMessagesReceived++;
        this.#counters.unknownMessages++;
        this.#logger.debug({ type: input.type }, 'ignoring unknown backend message');
        return;
      case 'message':
        this.#counters.controlMessagesReceived++;
        this.#onControl(input.message);
        return;
    }
  }

  #onControl(message: FromBackendMessage): void {
    switch (message.type) {
      case 'clear':
        this.#emit('clear');
        return;
      case 'mark':
        this.#emit('mark', message.name);
        return;
      case 'datachannel':
        this.#emit('datachannel', { label: message.label, data: dataChannelPayload(message) });
        return;
      case 'event':
        this.#emit('event', { name: message.name, data: message.data });
        return;
      case 'error':
        this.#counters.errorsReceived++;
        this.#logger.warn({ code: message.code, message: message.message }, 'backend reported an error');
        return;
      case 'end':
        // Closing first: an end() or close() from a listener then sends nothing more.
        this.#logger.debug({ reason: message.reason }, 'backend ended the call');
        this.#closeSocket(1000);
        this.#emit('end', message.reason);
        return;
    }
  }

  #protocolError(code: BackendProtocolError['code'], message: string): void {
    // A broken backend may send 50 of these a second: warn about the first few only.
    const level = this.#counters.badAudio + this.#counters.badMessages <= 10 ? 'warn' : 'debug';
    this.#logger[level]({ code, message }, 'invalid message from backend');
    this.#send({ type: 'error', code, message });
    this.#emit('protocolError', { code, message });
  }

  /** Emits (or holds, while paused) from a socket callback. */
  #emit<K extends keyof BackendConnectionEvents>(event: K, ...args: BackendConnectionEvents[K]): void {
    if (this.#held === undefined) {
      this.#deliver(event, ...args);
      return;
    }
    this.#held.push(() => this.#deliver(event, ...args));
    if (event === 'audio') {
      this.#heldBytes += (args[0] as Buffer).length;
      if (this.#heldBytes > MAX_HELD_BYTES && !this.#ws.isPaused && this.#state === 'open') this.#ws.pause();
    }
  }

  /** A listener that throws is logged, never thrown into ws. */
  #deliver<K extends keyof BackendConnectionEvents>(event: K, ...args: BackendConnectionEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: BackendConnectionEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#logger.error({ err: error, event }, 'backend connection listener threw');
    }
  }
}
