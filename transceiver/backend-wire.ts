// What travels on a call's backend WebSocket, per backend protocol (docs/backend-protocol.md): the
// socket's life (connect, ping, close, back-pressure) is backend-connection.ts's and the same for
// every protocol; a BackendWire turns the call's audio and events into that protocol's messages and
// the backend's messages into the call's. Sans-I/O: no sockets, no clocks.
import { createHash } from 'node:crypto';
import { mulawToPcm16, pcm16ToMulaw } from '../audio/mulaw.ts';
import {
  decodeControl,
  encodeControl,
  type FromBackendMessage,
  type SampleRate,
  SUBPROTOCOL,
  type ToBackendMessage,
} from '../protocol/backend.ts';
import {
  connectedMessage,
  decodeAgentMessage,
  markMessage,
  mediaMessage,
  startMessage,
  stopMessage,
  type TwilioStreamIds,
} from '../protocol/twilio-media-streams.ts';

/** The backend protocols a pool may speak. */
export const BACKEND_PROTOCOLS = ['voice-edge', 'twilio-media-streams'] as const;
export type BackendProtocol = (typeof BACKEND_PROTOCOLS)[number];

/** A text (string) or binary (Buffer) WebSocket message. */
export type WireMessage = string | Buffer;

/** A backend message, as the call sees it. */
export type WireInput =
  | { readonly kind: 'audio'; readonly pcm: Buffer }
  | { readonly kind: 'message'; readonly message: FromBackendMessage }
  | { readonly kind: 'unknown'; readonly type: string }
  | { readonly kind: 'invalid'; readonly code: 'bad-message' | 'bad-audio'; readonly error: string }
  /** Nothing to do (an empty audio message). */
  | { readonly kind: 'none' };

export interface BackendWire {
  readonly protocol: BackendProtocol;
  /** The WebSocket subprotocol to ask for (and insist on), if the protocol has one. */
  readonly subprotocol: string | undefined;
  /** Sent right after the socket opens, in order. */
  opening(): WireMessage[];
  /** One 20 ms frame of the caller's audio (PCM16LE mono at the call's rate). */
  audio(pcm: Buffer): WireMessage;
  /** A message of the voice-edge vocabulary, or undefined when this protocol cannot carry it. */
  control(message: ToBackendMessage): WireMessage | undefined;
  decode(data: Buffer, isBinary: boolean): WireInput;
}

export interface BackendWireOptions {
  readonly protocol: BackendProtocol;
  readonly sessionId: string;
  readonly sampleRate: SampleRate;
  /** From the WHIP request (`start.metadata`, or Twilio's `customParameters`). */
  readonly metadata: Record<string, unknown>;
  /** Twilio's `accountSid` in `start` and `stop` (AC + 32 hex digits). */
  readonly accountSid: string;
}

export function createBackendWire(options: BackendWireOptions): BackendWire {
  return options.protocol === 'twilio-media-streams' ? new TwilioWire(options) : new VoiceEdgeWire(options);
}

/** voice-edge.v1: binary PCM16 audio, JSON control messages (protocol/backend.ts). */
class VoiceEdgeWire implements BackendWire {
  readonly protocol = 'voice-edge';
  readonly subprotocol = SUBPROTOCOL;
  readonly #options: BackendWireOptions;

  constructor(options: BackendWireOptions) {
    this.#options = options;
  }

  opening(): WireMessage[] {
    const { sessionId, sampleRate, metadata } = this.#options;
    return [
      encodeControl({
        type: 'start',
        sessionId,
        audio: { encoding: 'pcm16le', sampleRate, channels: 1, frameMs: 20 },
        metadata,
      }),
    ];
  }

  audio(pcm: Buffer): WireMessage {
    return pcm;
  }

  control(message: ToBackendMessage): WireMessage {
    return encodeControl(message);
  }

  decode(data: Buffer, isBinary: boolean): WireInput {
    if (isBinary) {
      if (data.length % 2 !== 0) {
        return {
          kind: 'invalid',
          code: 'bad-audio',
          error: `audio message of ${data.length} bytes: PCM16 needs an even length`,
        };
      }
      return data.length === 0 ? { kind: 'none' } : { kind: 'audio', pcm: data };
    }
    const result = decodeControl(data.toString('utf8'), 'from-backend');
    if (!result.ok) return { kind: 'invalid', code: result.code, error: result.error };
    if (result.message.type === 'unknown') return { kind: 'unknown', type: result.message.receivedType };
    return { kind: 'message', message: result.message };
  }
}

/** A Twilio SID: the prefix and 32 hex digits of a hash, so the same session always has the same one. */
function sid(prefix: string, ...parts: string[]): string {
  return prefix + createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

/**
 * Twilio's `customParameters` (strings only): the session ID, then the WHIP request's metadata
 * (`requestId`, `userAgent`, `region`…), other values as JSON.
 */
export function twilioCustomParameters(
  sessionId: string,
  metadata: Record<string, unknown>,
): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (value === undefined) continue;
    parameters[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  parameters.sessionId = sessionId;
  return parameters;
}

/**
 * Twilio Media Streams (protocol/twilio-media-streams.ts): JSON text only, base64 μ-law at 8000 Hz.
 * Marks and `clear` map one to one; `end` becomes `stop` (its reason is not carried); events,
 * data-channel messages and errors have no Twilio message and are not sent.
 */
class TwilioWire implements BackendWire {
  readonly protocol = 'twilio-media-streams';
  readonly subprotocol = undefined;
  readonly #options: BackendWireOptions;
  readonly #ids: TwilioStreamIds;
  #sequenceNumber = 0;
  #chunk = 0;

  constructor(options: BackendWireOptions) {
    if (options.sampleRate !== 8000) {
      throw new RangeError(`twilio-media-streams carries 8000 Hz audio, not ${options.sampleRate} Hz`);
    }
    this.#options = options;
    this.#ids = {
      accountSid: options.accountSid,
      callSid: sid('CA', 'call', options.sessionId),
      streamSid: sid('MZ', 'stream', options.sessionId),
    };
  }

  opening(): WireMessage[] {
    const { sessionId, metadata } = this.#options;
    return [
      JSON.stringify(connectedMessage()),
      JSON.stringify(
        startMessage(this.#ids, ++this.#sequenceNumber, twilioCustomParameters(sessionId, metadata)),
      ),
    ];
  }

  audio(pcm: Buffer): WireMessage {
    const chunk = ++this.#chunk;
    // Caller frames are a gapless 20 ms stream (losses concealed): the chunk's media time.
    const timestampMs = (chunk - 1) * 20;
    return JSON.stringify(
      mediaMessage(this.#ids.streamSid, ++this.#sequenceNumber, chunk, timestampMs, pcm16ToMulaw(pcm)),
    );
  }

  control(message: ToBackendMessage): WireMessage | undefined {
    switch (message.type) {
      case 'mark':
        return JSON.stringify(markMessage(this.#ids.streamSid, ++this.#sequenceNumber, message.name));
      case 'end':
        return JSON.stringify(stopMessage(this.#ids, ++this.#sequenceNumber));
      default:
        return undefined;
    }
  }

  decode(data: Buffer, isBinary: boolean): WireInput {
    if (isBinary) {
      return {
        kind: 'invalid',
        code: 'bad-message',
        error: 'binary message: Media Streams messages are JSON text',
      };
    }
    const result = decodeAgentMessage(data.toString('utf8'));
    if (!result.ok) return { kind: 'invalid', code: result.code, error: result.error };
    const message = result.message;
    switch (message.event) {
      case 'media':
        return message.mulaw.length === 0
          ? { kind: 'none' }
          : { kind: 'audio', pcm: mulawToPcm16(message.mulaw) };
      case 'mark':
        return { kind: 'message', message: { type: 'mark', name: message.name } };
      case 'clear':
        return { kind: 'message', message: { type: 'clear' } };
      case 'unknown':
        return { kind: 'unknown', type: message.receivedEvent };
    }
  }
}
