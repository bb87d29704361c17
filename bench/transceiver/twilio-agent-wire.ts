// The benchmark agent speaking Twilio Media Streams (conversation-agent.ts --protocol
// twilio-media-streams), sans I/O: Twilio's JSON messages in, translated for the AgentSession
// (which speaks voice-edge.v1); what the session sends, out as Twilio's messages. Audio is 8 kHz:
// the caller's μ-law is decoded to PCM16 for the session's level checks, the session's PCM16
// encoded to μ-law and sent as one `media` message per 20 ms, as Twilio agents send it.

import { mulawToPcm16, pcm16ToMulaw } from '../../audio/mulaw.ts';
import { encodeControl, type ToBackendMessage } from '../../protocol/backend.ts';

export const TWILIO_RATE = 8000;
const FRAME_BYTES = 160; // 20 ms of 8 kHz μ-law

/** The two ends of an AgentSession the wire drives. */
export interface SessionInput {
  onText(text: string, now: number): void;
  onBinary(pcm: Buffer, now: number): void;
}

export class TwilioAgentWire {
  readonly #session: SessionInput;
  readonly #send: (text: string) => void;
  readonly #close: () => void;
  #streamSid = '';

  /** `send`: a text message to the transceiver; `close`: end the call (Twilio agents close the socket). */
  constructor(session: SessionInput, send: (text: string) => void, close: () => void) {
    this.#session = session;
    this.#send = send;
    this.#close = close;
  }

  /** A message from the transceiver. Anything else than start, media and stop is ignored. */
  onMessage(text: string, now: number): void {
    let message: {
      event?: unknown;
      streamSid?: unknown;
      start?: { customParameters?: Record<string, string> };
    };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    switch (message.event) {
      case 'start': {
        this.#streamSid = String(message.streamSid);
        const start: ToBackendMessage = {
          type: 'start',
          sessionId: message.start?.customParameters?.sessionId ?? this.#streamSid,
          audio: { encoding: 'pcm16le', sampleRate: TWILIO_RATE, channels: 1, frameMs: 20 },
          metadata: {},
        };
        this.#session.onText(encodeControl(start), now);
        return;
      }
      case 'media': {
        const payload = (message as { media?: { payload?: unknown } }).media?.payload;
        if (typeof payload === 'string')
          this.#session.onBinary(mulawToPcm16(Buffer.from(payload, 'base64')), now);
        return;
      }
      case 'stop':
        this.#session.onText(encodeControl({ type: 'end', reason: 'stop' }), now);
        return;
      default:
        return;
    }
  }

  /** What the session sends: its PCM16 as `media` messages, `clear` as Twilio's, `end` closes. */
  fromSession(data: string | Buffer): void {
    if (typeof data !== 'string') {
      const mulaw = pcm16ToMulaw(data);
      for (let offset = 0; offset < mulaw.length; offset += FRAME_BYTES) {
        const payload = mulaw.subarray(offset, offset + FRAME_BYTES).toString('base64');
        this.#send(`{"event":"media","streamSid":"${this.#streamSid}","media":{"payload":"${payload}"}}`);
      }
      return;
    }
    const type = (JSON.parse(data) as { type: string }).type;
    if (type === 'clear') this.#send(JSON.stringify({ event: 'clear', streamSid: this.#streamSid }));
    else if (type === 'end') this.#close();
  }
}
