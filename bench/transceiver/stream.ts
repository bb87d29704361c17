// What every benchmark caller sends: a cycle of pre-encoded Opus frames, a tone burst after
// silence, so that the echo of the burst's onset can be found in the returned stream. Encoded once
// per run (libopus through the transceiver's own encoder), then only copied into RTP packets: the
// load generator spends nothing on encoding.
import { OpusFrameEncoder } from '../../audio/opus-codec.ts';
import { sine } from '../../audio/tone.ts';
import type { SampleRate } from '../../protocol/backend.ts';

/** 20 ms frames per cycle: one burst per second. */
export const CYCLE_FRAMES = 50;
/** Tone frames at the start of each cycle (200 ms); the rest is digital silence. */
export const BURST_FRAMES = 10;
export const TONE_HZ = 440;
/** What a browser sends when the answer names no lower `maxplaybackrate`: Opus at 48 kHz, mono, 20 ms. */
export const SEND_RATE: SampleRate = 48_000;

/** A burst onset needs at least this many quiet packets before it. */
export const QUIET_BEFORE = 5;

export interface EncodedStream {
  /** The rate the audio was captured and encoded at (Hz): the most bandwidth it carries. */
  readonly rate: number;
  /** CYCLE_FRAMES Opus payloads; frame 0 is the burst's first. */
  readonly frames: readonly Buffer[];
}

/**
 * What a caller sends when the answer says its author plays Opus at `maxPlaybackRate` at most
 * (RFC 7587 `maxplaybackrate`): the audio encoded at the highest rate not above it, as a browser
 * does (libwebrtc caps its encoder's bandwidth to the answer's maxplaybackrate).
 */
export function forPlaybackRate<T extends { readonly rate: number }>(
  encoded: readonly T[],
  maxPlaybackRate: number,
): T {
  const fitting = encoded.filter((item) => item.rate <= maxPlaybackRate);
  if (fitting.length === 0)
    throw new RangeError(
      `the answer asks for Opus at ${maxPlaybackRate} Hz at most; audio is encoded at ${encoded.map((item) => item.rate).join(', ')} Hz`,
    );
  return fitting.reduce((best, item) => (item.rate > best.rate ? item : best));
}

/**
 * Encodes three cycles with one encoder and keeps the last, so the encoder's state at the cycle's
 * end (silence) matches its state before the cycle's start: the loop joins without a glitch.
 */
export function encodeStream(rate: SampleRate = SEND_RATE): EncodedStream {
  const encoder = new OpusFrameEncoder(rate);
  const silence = Buffer.alloc(encoder.frameBytes);
  const samplesPerFrame = encoder.frameBytes / 2;
  let frames: Buffer[] = [];
  for (let cycle = 0; cycle < 3; cycle++) {
    frames = [];
    for (let i = 0; i < CYCLE_FRAMES; i++) {
      const pcm = i < BURST_FRAMES ? sine(TONE_HZ, rate, 20, 0.3, i * samplesPerFrame) : silence;
      frames.push(encoder.encode(pcm));
    }
  }
  return { rate, frames };
}
