// The Twilio Media Streams protocol (bidirectional streams), as a backend protocol of voice-edge
// (docs/backend-protocol.md#twilio-media-streams): the transceiver plays Twilio's part, so a voice
// agent written for phone calls (Pipecat's TwilioFrameSerializer, and the clones of Telnyx, Plivo,
// Exotel…) answers WebRTC calls unchanged. Every message is JSON text; audio is base64 μ-law at
// 8000 Hz, mono. Pure: message builders and one decoder, no sockets, no clocks, no counters.
import { z } from 'zod';
import { isBase64 } from './backend.ts';
import { formatIssues, parseJsonObject } from './schema.ts';

/** The only audio format of the protocol. */
export const TWILIO_MEDIA_FORMAT = { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } as const;

/** Twilio-shaped identifiers of one stream (34 characters: a two-letter prefix and 32 hex digits). */
export interface TwilioStreamIds {
  readonly accountSid: string;
  readonly callSid: string;
  readonly streamSid: string;
}

export const ACCOUNT_SID = /^AC[0-9a-f]{32}$/;
/** The accountSid sent when none is configured: there is no Twilio account behind voice-edge. */
export const DEFAULT_ACCOUNT_SID = `AC${'0'.repeat(32)}`;

export interface ConnectedMessage {
  readonly event: 'connected';
  readonly protocol: 'Call';
  readonly version: '1.0.0';
}

export interface StartMessage {
  readonly event: 'start';
  readonly sequenceNumber: string;
  readonly start: {
    readonly accountSid: string;
    readonly streamSid: string;
    readonly callSid: string;
    readonly tracks: readonly ['inbound'];
    readonly customParameters: Readonly<Record<string, string>>;
    readonly mediaFormat: typeof TWILIO_MEDIA_FORMAT;
  };
  readonly streamSid: string;
}

export interface MediaMessage {
  readonly event: 'media';
  readonly sequenceNumber: string;
  readonly media: {
    readonly track: 'inbound';
    readonly chunk: string;
    readonly timestamp: string;
    readonly payload: string;
  };
  readonly streamSid: string;
}

export interface MarkMessage {
  readonly event: 'mark';
  readonly sequenceNumber: string;
  readonly streamSid: string;
  readonly mark: { readonly name: string };
}

export interface StopMessage {
  readonly event: 'stop';
  readonly sequenceNumber: string;
  readonly streamSid: string;
  readonly stop: { readonly accountSid: string; readonly callSid: string };
}

/** What the transceiver (in Twilio's place) sends. */
export type ToAgentMessage = ConnectedMessage | StartMessage | MediaMessage | MarkMessage | StopMessage;

export function connectedMessage(): ConnectedMessage {
  return { event: 'connected', protocol: 'Call', version: '1.0.0' };
}

export function startMessage(
  ids: TwilioStreamIds,
  sequenceNumber: number,
  customParameters: Readonly<Record<string, string>>,
): StartMessage {
  return {
    event: 'start',
    sequenceNumber: String(sequenceNumber),
    start: {
      accountSid: ids.accountSid,
      streamSid: ids.streamSid,
      callSid: ids.callSid,
      tracks: ['inbound'],
      customParameters,
      mediaFormat: TWILIO_MEDIA_FORMAT,
    },
    streamSid: ids.streamSid,
  };
}

/** One chunk of the caller's audio; `chunk` counts from 1, `timestampMs` from the stream's start. */
export function mediaMessage(
  streamSid: string,
  sequenceNumber: number,
  chunk: number,
  timestampMs: number,
  mulaw: Uint8Array,
): MediaMessage {
  return {
    event: 'media',
    sequenceNumber: String(sequenceNumber),
    media: {
      track: 'inbound',
      chunk: String(chunk),
      timestamp: String(timestampMs),
      payload: Buffer.from(mulaw.buffer, mulaw.byteOffset, mulaw.byteLength).toString('base64'),
    },
    streamSid,
  };
}

export function markMessage(streamSid: string, sequenceNumber: number, name: string): MarkMessage {
  return { event: 'mark', sequenceNumber: String(sequenceNumber), streamSid, mark: { name } };
}

export function stopMessage(ids: TwilioStreamIds, sequenceNumber: number): StopMessage {
  return {
    event: 'stop',
    sequenceNumber: String(sequenceNumber),
    streamSid: ids.streamSid,
    stop: { accountSid: ids.accountSid, callSid: ids.callSid },
  };
}

/** What an agent sends: audio to play, a mark to be told about, a barge-in. */
export type FromAgentMessage =
  | { readonly event: 'media'; readonly mulaw: Buffer }
  | { readonly event: 'mark'; readonly name: string }
  | { readonly event: 'clear' };

/** A well-formed message of another event (Twilio's own, or one this side does not know): ignored. */
export interface UnknownAgentMessage {
  readonly event: 'unknown';
  readonly receivedEvent: string;
}

export type AgentDecodeResult =
  | { readonly ok: true; readonly message: FromAgentMessage | UnknownAgentMessage }
  | { readonly ok: false; readonly code: 'bad-message' | 'bad-audio'; readonly error: string };

// Twilio reads neither streamSid nor any other field of these messages beyond the ones below;
// neither does this side, so an agent that echoes another stream's SID is not refused.
const MediaSchema = z.object({ media: z.object({ payload: z.string() }) });
const MarkSchema = z.object({ mark: z.object({ name: z.string().min(1) }) });

/** Decodes one text message from an agent. Never throws. */
export function decodeAgentMessage(text: string): AgentDecodeResult {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return { ok: false, code: 'bad-message', error: parsed.error };
  const value = parsed.value;
  const event = value.event;
  if (typeof event !== 'string') return { ok: false, code: 'bad-message', error: 'event: must be a string' };
  switch (event) {
    case 'media': {
      const parsed = MediaSchema.safeParse(value);
      if (!parsed.success)
        return { ok: false, code: 'bad-message', error: `media: ${formatIssues(parsed.error)}` };
      const { payload } = parsed.data.media;
      if (!isBase64(payload)) return { ok: false, code: 'bad-audio', error: 'media.payload: must be base64' };
      return { ok: true, message: { event: 'media', mulaw: Buffer.from(payload, 'base64') } };
    }
    case 'mark': {
      const parsed = MarkSchema.safeParse(value);
      if (!parsed.success)
        return { ok: false, code: 'bad-message', error: `mark: ${formatIssues(parsed.error)}` };
      return { ok: true, message: { event: 'mark', name: parsed.data.mark.name } };
    }
    case 'clear':
      return { ok: true, message: { event: 'clear' } };
    default:
      return { ok: true, message: { event: 'unknown', receivedEvent: event } };
  }
}
