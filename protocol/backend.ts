// The backend protocol (docs/backend-protocol.md): one WebSocket per call between a transceiver and
// an inference backend. Binary messages carry PCM16 audio; text messages carry the JSON control
// messages validated here. Pure: no sockets, no clocks.
//
// Decoding is liberal where the contract asks for forward compatibility and strict where a mistake
// would be silent:
// - a message whose `type` this side does not know (a newer peer's message, or one that only travels
//   the other way) decodes to `{ type: 'unknown', receivedType }`: callers ignore it;
// - unknown fields of a known type are dropped;
// - text that is not JSON, not an object, has no string `type`, or has a known `type` with wrong
//   fields is `bad-message` (the receiver answers with an `error` of that code).
import { z } from 'zod';
import { formatIssues, parseJsonObject } from './schema.ts';

/** The WebSocket subprotocol both sides must agree on. */
export const SUBPROTOCOL = 'voice-edge.v1';

/** The sample rates a pool may choose; audio in both directions is PCM16LE mono at that rate. */
export const SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export type SampleRate = (typeof SAMPLE_RATES)[number];

/** Duration of one caller frame (transceiver → backend), in milliseconds. */
export const FRAME_MS = 20;

export function isSampleRate(value: unknown): value is SampleRate {
  return (SAMPLE_RATES as readonly unknown[]).includes(value);
}

/** Samples in one 20 ms frame: sampleRate / 50 (320 at 16 kHz). */
export function frameSamples(sampleRate: SampleRate): number {
  return (sampleRate * FRAME_MS) / 1000;
}

/** Bytes in one 20 ms mono PCM16 frame: 2 × sampleRate / 50 (640 at 16 kHz). */
export function frameBytes(sampleRate: SampleRate): number {
  return frameSamples(sampleRate) * 2;
}

/** How long `bytes` of mono PCM16 at `sampleRate` plays, in milliseconds (may be fractional). */
export function pcmDurationMs(bytes: number, sampleRate: SampleRate): number {
  return (bytes / 2 / sampleRate) * 1000;
}

/** Error codes either side sends in an `error` message. Receivers accept any string. */
export const ERROR_CODES = ['bad-message', 'bad-audio', 'queue-overflow'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Why the transceiver ended a call (its `end` message). Backends accept any string. */
export const END_REASONS = [
  'client-hangup',
  'media-timeout',
  'connect-timeout',
  'shutdown',
  'drain-timeout',
] as const;
export type EndReason = (typeof END_REASONS)[number];

// Buffer.from(…, 'base64') never fails: it skips what it cannot use. Binary data-channel payloads
// must be canonical base64 (padding optional) so a corrupted payload is an error, not other bytes.
export function isBase64(text: string): boolean {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return false;
  const canonical = Buffer.from(text, 'base64').toString('base64');
  return canonical === text || canonical.replace(/=+$/, '') === text;
}

const name = z.string().min(1);
const sampleRate = z.custom<SampleRate>(isSampleRate, `must be one of ${SAMPLE_RATES.join(', ')}`);

const audioFormat = z.object({
  encoding: z.literal('pcm16le'),
  sampleRate,
  channels: z.literal(1),
  frameMs: z.literal(FRAME_MS),
});

const start = z.object({
  type: z.literal('start'),
  sessionId: z.string().min(1),
  audio: audioFormat,
  /** From the WHIP request; `{}` when there was none. */
  metadata: z.record(z.string(), z.unknown()).default({}),
});

const event = z.object({ type: z.literal('event'), name, data: z.unknown().optional() });
const mark = z.object({ type: z.literal('mark'), name });
const error = z.object({
  type: z.literal('error'),
  code: z.string().min(1),
  message: z.string().default(''),
});
const clear = z.object({ type: z.literal('clear') });

function dataChannel<Label extends z.ZodType<string | undefined>>(label: Label) {
  return z
    .object({
      type: z.literal('datachannel'),
      label,
      data: z.string(),
      /** When true, `data` is base64 of a binary message. */
      binary: z.boolean().optional(),
    })
    .refine((message) => message.binary !== true || isBase64(message.data), {
      path: ['data'],
      message: 'must be base64 when binary is true',
    });
}

/** Messages the transceiver sends to the backend. */
export const ToBackendMessageSchema = z.discriminatedUnion('type', [
  start,
  event,
  dataChannel(z.string()),
  mark,
  z.object({ type: z.literal('end'), reason: z.string().min(1) }),
  error,
]);
export type ToBackendMessage = z.output<typeof ToBackendMessageSchema>;

/** Messages the backend sends to the transceiver. */
export const FromBackendMessageSchema = z.discriminatedUnion('type', [
  clear,
  mark,
  /** Without a label: the caller's first data channel. */
  dataChannel(z.string().optional()),
  event,
  z.object({ type: z.literal('end'), reason: z.string().optional() }),
  error,
]);
export type FromBackendMessage = z.output<typeof FromBackendMessageSchema>;

export type StartMessage = Extract<ToBackendMessage, { type: 'start' }>;
export type DataChannelMessage = Extract<FromBackendMessage, { type: 'datachannel' }>;

/** A well-formed message whose type this side does not handle: ignore it. */
export interface UnknownMessage {
  type: 'unknown';
  /** The `type` field as received. */
  receivedType: string;
}

export type Direction = 'to-backend' | 'from-backend';

export type DecodeResult<Message> =
  | { ok: true; message: Message | UnknownMessage }
  | { ok: false; code: 'bad-message'; error: string };

const schemas = {
  'to-backend': ToBackendMessageSchema,
  'from-backend': FromBackendMessageSchema,
} as const;

const knownTypes = {
  'to-backend': new Set(['start', 'event', 'datachannel', 'mark', 'end', 'error']),
  'from-backend': new Set(['clear', 'mark', 'datachannel', 'event', 'end', 'error']),
} as const;

/**
 * Decodes one text message. `direction` names who sent it: a backend decodes `'to-backend'`, the
 * transceiver decodes `'from-backend'`. Never throws.
 */
export function decodeControl(text: string, direction: 'to-backend'): DecodeResult<ToBackendMessage>;
export function decodeControl(text: string, direction: 'from-backend'): DecodeResult<FromBackendMessage>;
export function decodeControl(
  text: string,
  direction: Direction,
): DecodeResult<ToBackendMessage | FromBackendMessage> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return { ok: false, code: 'bad-message', error: parsed.error };
  const value = parsed.value;
  const type = value.type;
  if (typeof type !== 'string') {
    return { ok: false, code: 'bad-message', error: 'type: must be a string' };
  }
  if (!knownTypes[direction].has(type)) return { ok: true, message: { type: 'unknown', receivedType: type } };
  const result = schemas[direction].safeParse(value);
  if (!result.success)
    return { ok: false, code: 'bad-message', error: `${type}: ${formatIssues(result.error)}` };
  return { ok: true, message: result.data };
}

/**
 * The text of one control message. The message is not validated (the types describe it); `data` of
 * an event must be JSON-serializable (a BigInt or a cycle throws a TypeError).
 */
export function encodeControl(message: ToBackendMessage | FromBackendMessage): string {
  return JSON.stringify(message);
}

/** A labelled `datachannel` message: valid in both directions. */
export interface LabelledDataChannelMessage {
  type: 'datachannel';
  label: string;
  data: string;
  binary?: true;
}

/** A `datachannel` message for a text or binary payload (binary goes as base64). */
export function dataChannelMessage(label: string, data: string | Uint8Array): LabelledDataChannelMessage {
  if (typeof data === 'string') return { type: 'datachannel', label, data };
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return { type: 'datachannel', label, data: bytes.toString('base64'), binary: true };
}

/** The payload of a decoded `datachannel` message: a string, or the bytes when `binary` is true. */
export function dataChannelPayload(message: { data: string; binary?: boolean | undefined }): string | Buffer {
  return message.binary === true ? Buffer.from(message.data, 'base64') : message.data;
}
