// Opus for one direction of one call, at the backend's sample rate, mono, one 20 ms frame at a time.
// libopus decodes and encodes natively at 8/12/16/24/48 kHz whatever rate the RTP clock says
// (always 48 kHz for Opus), so no resampling happens anywhere on the media path.
//
// The decoder never throws on what the network sends: a payload libopus rejects is concealed like a
// lost packet, and counted. Its output is always exactly one frame, so the backend receives a
// steady 50 frames per second of fixed size whatever the client does.
import { Decoder, Encoder } from '@evan/opus';
import { frameBytes, type SampleRate } from '../protocol/backend.ts';
import { OPUS_APPLICATION_DEFAULTS, type OpusApplication } from './opus-application.ts';

/** Opus's audio bandwidths (RFC 6716 §2), narrowest first: the order of `decodedByBandwidth`. */
export const OPUS_BANDWIDTHS = ['narrowband', 'mediumband', 'wideband', 'superwideband', 'fullband'] as const;
export type OpusBandwidth = (typeof OPUS_BANDWIDTHS)[number];

/**
 * The bandwidth an Opus packet carries, as an index into OPUS_BANDWIDTHS, from its TOC byte's
 * configuration number (RFC 6716 §3.1, Table 2): SILK 0–11, hybrid 12–15, CELT 16–31.
 */
export function opusBandwidthIndex(toc: number): number {
  const config = toc >> 3;
  if (config < 12) return config >> 2; // SILK: NB, MB, WB, four configurations each
  if (config < 16) return config < 14 ? 3 : 4; // hybrid: SWB, FB
  const celt = (config - 16) >> 2; // CELT: NB, WB, SWB, FB
  return celt === 0 ? 0 : celt + 1;
}

/** How many consecutive concealed frames it takes to fade the last good frame out to silence. */
export const CONCEAL_FADE_FRAMES = 4;

export interface OpusDecoderStats {
  /** Packets libopus decoded. */
  decoded: number;
  /** Frames made up by `conceal()`, including those standing in for undecodable payloads. */
  concealed: number;
  /** Payloads libopus rejected (or empty ones), concealed instead. */
  decodeErrors: number;
  /** Decoded packets that did not carry 20 ms and were trimmed or padded to one frame. */
  resized: number;
  /**
   * Decoded packets by the bandwidth they carried (OPUS_BANDWIDTHS order): whether callers honour the
   * answer's `maxplaybackrate` (wider audio costs more to decode and is thrown away here).
   */
  decodedByBandwidth: number[];
}

export class OpusFrameDecoder {
  readonly sampleRate: SampleRate;
  /** Bytes of every frame this decoder returns: 20 ms of PCM16LE mono. */
  readonly frameBytes: number;
  readonly #decoder: Decoder;
  /** The last frame libopus produced: what concealment repeats. */
  #lastFrame: Buffer | undefined;
  #concealedInRow = 0;
  readonly #stats: OpusDecoderStats = {
    decoded: 0,
    concealed: 0,
    decodeErrors: 0,
    resized: 0,
    decodedByBandwidth: OPUS_BANDWIDTHS.map(() => 0),
  };

  constructor(sampleRate: SampleRate) {
    this.sampleRate = sampleRate;
    this.frameBytes = frameBytes(sampleRate);
    this.#decoder = new Decoder({ channels: 1, sample_rate: sampleRate });
  }

  get stats(): Readonly<OpusDecoderStats> {
    return this.#stats;
  }

  /**
   * One 20 ms frame of PCM16LE from an Opus payload, always exactly `frameBytes` long.
   *
   * The rest of the media path counts one packet per 20 ms (the SDP asks for ptime 20, what every
   * browser sends). A packet carrying more (40, 60 ms…) keeps only its first 20 ms; one carrying
   * less (10 ms) is padded with silence. Both are counted in `resized`: frequent resizing means a
   * client ignoring the ptime, which this pipeline does not support.
   */
  decode(payload: Uint8Array): Buffer {
    let decoded: Uint8Array;
    try {
      if (payload.length === 0) throw new RangeError('empty Opus payload');
      decoded = this.#decoder.decode(payload);
    } catch {
      // libopus says "invalid packet" or similar: the client (or the path) sent garbage. It is one
      // lost frame for the listener, not a reason to fail the call.
      this.#stats.decodeErrors++;
      return this.conceal();
    }
    this.#stats.decoded++;
    this.#stats.decodedByBandwidth[opusBandwidthIndex(payload[0]!)]!++;
    this.#concealedInRow = 0;
    // The binding returns a fresh copy (Uint8Array#slice of its shared buffer): a view is safe.
    let frame = Buffer.from(decoded.buffer, decoded.byteOffset, decoded.byteLength);
    if (frame.length !== this.frameBytes) {
      this.#stats.resized++;
      const sized = Buffer.alloc(this.frameBytes);
      frame.copy(sized, 0, 0, Math.min(frame.length, this.frameBytes));
      frame = sized;
    }
    this.#lastFrame = frame;
    return frame;
  }

  /**
   * A frame standing in for a lost packet: the last decoded frame repeated with a gain that falls
   * linearly from frame to frame (and smoothly within each frame, so no step is heard), reaching
   * silence after `CONCEAL_FADE_FRAMES` frames; silence from then on, or if nothing was decoded
   * yet. Repetition hides a single loss well in voice; fading avoids a buzzing loop on long gaps.
   */
  conceal(): Buffer {
    this.#stats.concealed++;
    const index = this.#concealedInRow++;
    const frame = Buffer.alloc(this.frameBytes);
    if (this.#lastFrame === undefined || index >= CONCEAL_FADE_FRAMES) return frame;
    const samples = this.frameBytes / 2;
    const gainFrom = 1 - index / CONCEAL_FADE_FRAMES;
    const gainStep = 1 / CONCEAL_FADE_FRAMES / samples;
    for (let i = 0; i < samples; i++) {
      const gain = gainFrom - gainStep * (i + 1);
      frame.writeInt16LE(Math.round(this.#lastFrame.readInt16LE(i * 2) * gain), i * 2);
    }
    return frame;
  }
}

const LIBOPUS_APPLICATION = { 'restricted-lowdelay': 'restricted_lowdelay', voip: 'voip' } as const;

export interface OpusEncoderOptions {
  /** Default `voip`. */
  application?: OpusApplication;
  /** Target bitrate in bits per second; default by application. */
  bitrate?: number;
  /** libopus complexity, 0–10: the encoder's CPU against quality; default by application. */
  complexity?: number;
  /**
   * libopus DTX: silence is coded as one-byte packets (a browser leaves those unsent when the other
   * side asks for `usedtx=1`). For the benchmark's callers; the transceiver's own stream goes quiet
   * its own way (audio-bridge.ts).
   */
  dtx?: boolean;
}

export class OpusFrameEncoder {
  readonly sampleRate: SampleRate;
  /** Bytes `encode` expects: 20 ms of PCM16LE mono. */
  readonly frameBytes: number;
  readonly #encoder: Encoder;

  constructor(sampleRate: SampleRate, options: OpusEncoderOptions = {}) {
    this.sampleRate = sampleRate;
    this.frameBytes = frameBytes(sampleRate);
    const application = options.application ?? 'voip';
    const defaults = OPUS_APPLICATION_DEFAULTS[application];
    this.#encoder = new Encoder({
      channels: 1,
      sample_rate: sampleRate,
      application: LIBOPUS_APPLICATION[application],
    });
    this.#encoder.bitrate = options.bitrate ?? defaults.bitrate;
    this.#encoder.complexity = (options.complexity ?? defaults.complexity) as 5;
    if (options.dtx === true) this.#encoder.dtx = true;
  }

  /** One Opus packet (a fresh Buffer) from exactly one 20 ms frame of PCM16LE mono. */
  encode(pcm: Uint8Array): Buffer {
    if (pcm.length !== this.frameBytes) {
      throw new RangeError(`Opus encoder expects ${this.frameBytes} bytes (20 ms), got ${pcm.length}`);
    }
    const packet = this.#encoder.encode(pcm);
    return Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
  }
}
