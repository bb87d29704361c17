// G.711 μ-law (ITU-T G.711, the North American companding of telephony): 8-bit codes ↔ linear
// PCM16. The Twilio Media Streams backend protocol carries audio this way at 8000 Hz; the Opus side
// of a call runs at 8000 Hz too (libopus decodes to and encodes from 8 kHz itself, band-limited),
// so no resampler is needed here. Both directions are table lookups.

const BIAS = 0x84;
const CLIP = 32635;

/** The linear value of each code (G.711's decoder: codes are stored inverted). */
const DECODE = new Int16Array(256);
for (let code = 0; code < 256; code++) {
  const inverted = ~code & 0xff;
  const exponent = (inverted >> 4) & 0x07;
  const mantissa = inverted & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  DECODE[code] = inverted & 0x80 ? -magnitude : magnitude;
}

/** G.711's encoder, with its bias and clip, for building the table. */
function encodeSample(sample: number): number {
  let value = sample;
  const sign = value < 0 ? 0x80 : 0;
  if (sign !== 0) value = -value;
  if (value > CLIP) value = CLIP;
  value += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (value & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (value >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/**
 * Codes of every 14-bit magnitude step (the encoder ignores the two low bits), indexed by
 * (sample >> 2) + 8192: one lookup per sample on the hot path.
 */
const ENCODE = new Uint8Array(16384);
for (let index = 0; index < 16384; index++) ENCODE[index] = encodeSample((index - 8192) << 2);

/** The code of one linear sample (-32768…32767). */
export function encodeMulawSample(sample: number): number {
  return ENCODE[(sample >> 2) + 8192]!;
}

export function decodeMulawSample(code: number): number {
  return DECODE[code & 0xff]!;
}

/** μ-law bytes → PCM16LE (two bytes per code). */
export function mulawToPcm16(mulaw: Uint8Array): Buffer {
  const pcm = Buffer.allocUnsafe(mulaw.length * 2);
  for (let i = 0; i < mulaw.length; i++) pcm.writeInt16LE(DECODE[mulaw[i]!]!, i * 2);
  return pcm;
}

/** PCM16LE (even length) → μ-law bytes, one per sample. */
export function pcm16ToMulaw(pcm: Uint8Array): Buffer {
  if (pcm.length % 2 !== 0) throw new RangeError(`PCM16 needs an even length, got ${pcm.length}`);
  const mulaw = Buffer.allocUnsafe(pcm.length / 2);
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.length);
  for (let i = 0; i < mulaw.length; i++) mulaw[i] = ENCODE[(view.getInt16(i * 2, true) >> 2) + 8192]!;
  return mulaw;
}
