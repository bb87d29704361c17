// One call of the echo agent, sans I/O: messages in (with the time they arrived), messages out.
// The caller's audio goes into a delay line and comes back delayMs later with its rhythm intact.
// Every markEveryMs of echoed audio a `mark` follows it; when the transceiver answers that mark
// (the audio before it has been played to the caller) the session reports a `mark-played` event
// with how long after sending the answer came. Data-channel messages come straight back, text
// prefixed with "echo: ". `end` closes; unknown message types are ignored.
import type { Logger } from 'pino';
import {
  decodeControl,
  encodeControl,
  type FromBackendMessage,
  pcmDurationMs,
  type StartMessage,
} from '../../protocol/backend.ts';
import { DelayLine } from './delay-line.ts';

export type EchoOutput =
  | { kind: 'send'; data: string | Buffer }
  | { kind: 'close'; code: number; reason: string };

export interface EchoSessionOptions {
  readonly delayMs: number;
  /** A mark after every this much echoed audio; 0 = no marks. */
  readonly markEveryMs: number;
  readonly logger: Logger;
}

/** Prefix of echoed text data-channel messages. */
export const ECHO_PREFIX = 'echo: ';

/** Marks sent and not yet answered, kept at most (the oldest are forgotten). */
const MAX_PENDING_MARKS = 256;

type Delayed = { kind: 'audio'; pcm: Buffer } | { kind: 'mark'; name: string };

function send(message: FromBackendMessage): EchoOutput {
  return { kind: 'send', data: encodeControl(message) };
}

export class EchoSession {
  readonly #markEveryMs: number;
  readonly #line: DelayLine<Delayed>;
  #logger: Logger;
  #start: StartMessage | undefined;
  #ended = false;
  #echoedMs = 0;
  #marks = 0;
  /** Mark name → when it was sent. */
  readonly #pendingMarks = new Map<string, number>();
  readonly stats = { framesIn: 0, bytesIn: 0, framesOut: 0, marksSent: 0, marksAnswered: 0 };

  constructor(options: EchoSessionOptions) {
    this.#line = new DelayLine(options.delayMs);
    this.#markEveryMs = options.markEveryMs;
    this.#logger = options.logger;
  }

  /** The `start` message, once it has arrived. */
  get start(): StartMessage | undefined {
    return this.#start;
  }

  /** A binary message (caller audio) arrived at `now`. */
  onBinary(pcm: Buffer, now: number): EchoOutput[] {
    if (this.#ended) return [];
    if (this.#start === undefined) return [this.#error('bad-message', 'audio before start')];
    if (pcm.length % 2 !== 0) {
      return [this.#error('bad-audio', `audio message of ${pcm.length} bytes: PCM16 needs an even length`)];
    }
    this.stats.framesIn++;
    this.stats.bytesIn += pcm.length;
    this.#line.push({ kind: 'audio', pcm }, now);
    if (this.#markEveryMs > 0) {
      const before = Math.floor(this.#echoedMs / this.#markEveryMs);
      this.#echoedMs += pcmDurationMs(pcm.length, this.#start.audio.sampleRate);
      if (Math.floor(this.#echoedMs / this.#markEveryMs) > before) {
        this.#line.push({ kind: 'mark', name: `echo-${++this.#marks}` }, now);
      }
    }
    return this.takeDue(now);
  }

  /** A text message arrived at `now`. */
  onText(text: string, now: number): EchoOutput[] {
    if (this.#ended) return [];
    const result = decodeControl(text, 'to-backend');
    if (!result.ok) return [this.#error('bad-message', result.error)];
    const message = result.message;
    if (message.type === 'unknown') {
      this.#logger.debug({ type: message.receivedType }, 'ignoring unknown message');
      return [];
    }
    if (this.#start === undefined && message.type !== 'start') {
      return [this.#error('bad-message', `expected start first, got ${message.type}`)];
    }
    switch (message.type) {
      case 'start':
        if (this.#start !== undefined) return [this.#error('bad-message', 'start twice')];
        this.#start = message;
        this.#logger = this.#logger.child({ sessionId: message.sessionId });
        this.#logger.info({ audio: message.audio, metadata: message.metadata }, 'call started');
        return [];
      case 'event':
        this.#logger.debug({ name: message.name, data: message.data }, 'event');
        return [];
      case 'datachannel': {
        const data = message.binary === true ? message.data : `${ECHO_PREFIX}${message.data}`;
        return [send({ type: 'datachannel', label: message.label, data, binary: message.binary })];
      }
      case 'mark': {
        const sentAt = this.#pendingMarks.get(message.name);
        if (sentAt === undefined) {
          this.#logger.debug({ name: message.name }, 'answer to an unknown mark');
          return [];
        }
        this.#pendingMarks.delete(message.name);
        this.stats.marksAnswered++;
        return [
          send({ type: 'event', name: 'mark-played', data: { name: message.name, afterMs: now - sentAt } }),
        ];
      }
      case 'error':
        this.#logger.warn({ code: message.code, message: message.message }, 'transceiver reported an error');
        return [];
      case 'end':
        this.#logger.info({ reason: message.reason, ...this.stats }, 'call ended');
        this.#ended = true;
        this.#line.clear();
        return [{ kind: 'close', code: 1000, reason: '' }];
    }
  }

  /** When takeDue should next be called, or undefined when nothing is waiting. */
  nextDueAt(): number | undefined {
    return this.#ended ? undefined : this.#line.nextDueAt();
  }

  /** The delayed audio and marks due at `now`, in order. */
  takeDue(now: number): EchoOutput[] {
    const out: EchoOutput[] = [];
    for (const item of this.#line.takeDue(now)) {
      if (item.kind === 'audio') {
        this.stats.framesOut++;
        out.push({ kind: 'send', data: item.pcm });
      } else {
        this.stats.marksSent++;
        this.#pendingMarks.set(item.name, now);
        if (this.#pendingMarks.size > MAX_PENDING_MARKS) {
          this.#pendingMarks.delete(this.#pendingMarks.keys().next().value!);
        }
        out.push(send({ type: 'mark', name: item.name }));
      }
    }
    return out;
  }

  #error(code: 'bad-message' | 'bad-audio', message: string): EchoOutput {
    this.#logger.warn({ code, message }, 'invalid message from the transceiver');
    return send({ type: 'error', code, message });
  }
}
