// Opus frames → RTP packets for the stream to the caller (RFC 3550, RFC 7587). Pure apart from
// drawing the random initial sequence number and timestamp.
//
// Packets come out as plain header fields and payload. The peer sends them past werift's send chain
// (transceiver/werift-tunnel.ts RtpSendShortcut) or, for a stream's first packet, through werift's
// `RTCRtpSender.sendRtp`; either way the SSRC and the negotiated payload type are werift's, and the
// sequence numbers and timestamps given here are kept (werift only offsets them after `replaceRTP`,
// which the transceiver never calls). So continuity, wrap and the marker bit are this class's job.
import { randomInt } from 'node:crypto';

/** Opus RTP always runs a 48 kHz clock, whatever the codec's internal rate (RFC 7587 §4.1). */
export const OPUS_RTP_CLOCK_RATE = 48_000;
/** Timestamp units in one 20 ms frame. */
export const TIMESTAMP_STEP = 960;

/** One RTP packet to the caller: the header fields that matter, and the Opus payload. */
export interface RtpPacketFields {
  sequenceNumber: number;
  timestamp: number;
  /** Set on the first packet of a talkspurt. */
  marker: boolean;
  payloadType: number;
  payload: Buffer;
}

export interface OpusRtpPacketizerOptions {
  /** Payload type (default 111, the usual dynamic type for Opus; werift writes the negotiated one). */
  payloadType?: number;
  /** First sequence number (default random, as RFC 3550 asks). */
  firstSequenceNumber?: number;
  /** First timestamp (default random). */
  firstTimestamp?: number;
}

export class OpusRtpPacketizer {
  readonly payloadType: number;
  #sequenceNumber: number;
  #timestamp: number;
  /** RTP time stamped since the first packet (samples; unwrapped, unlike the timestamp). */
  #elapsed = 0;
  /** The stream's first packet starts a talkspurt, whatever the caller says. */
  #talkspurtPending = true;

  constructor(options: OpusRtpPacketizerOptions = {}) {
    this.payloadType = options.payloadType ?? 111;
    this.#sequenceNumber = (options.firstSequenceNumber ?? randomInt(0x10000)) & 0xffff;
    this.#timestamp = (options.firstTimestamp ?? randomInt(0x1_0000_0000)) >>> 0;
  }

  /** Sequence number and timestamp the next packet will carry. */
  get next(): { sequenceNumber: number; timestamp: number } {
    return { sequenceNumber: this.#sequenceNumber, timestamp: this.#timestamp };
  }

  /**
   * The RTP packet for the next 20 ms frame. `talkspurtStart` sets the marker bit, telling the
   * receiver's jitter buffer it may re-adapt here: pass it for the first audio after silence or
   * after a clear (barge-in). The marker is also set on the first packet.
   */
  packetize(payload: Buffer, talkspurtStart = false): RtpPacketFields {
    const packet: RtpPacketFields = {
      sequenceNumber: this.#sequenceNumber,
      timestamp: this.#timestamp,
      marker: talkspurtStart || this.#talkspurtPending,
      payloadType: this.payloadType,
      payload,
    };
    this.#talkspurtPending = false;
    this.#sequenceNumber = (this.#sequenceNumber + 1) & 0xffff;
    this.#timestamp = (this.#timestamp + TIMESTAMP_STEP) >>> 0;
    this.#elapsed += TIMESTAMP_STEP;
    return packet;
  }

  /**
   * Moves the next timestamp to `elapsed` samples (48 kHz) after the first packet's, unless it is
   * there or beyond already (timestamps never go back): time that passed with nothing sent (silence
   * not transmitted), so the receiver keeps real time. The sequence number does not move (nothing
   * was lost). Whether the next packet starts a talkspurt is the caller's to say.
   */
  catchUpTo(elapsed: number): void {
    const behind = elapsed - this.#elapsed;
    if (behind <= 0) return;
    this.#timestamp = (this.#timestamp + behind) >>> 0;
    this.#elapsed = elapsed;
  }
}
