// The encoder settings a transceiver pool chooses from, apart from libopus itself so that the
// operator's API (operator/api/v1alpha1.ts) can name them without loading the codec.

/**
 * What the encoder is tuned for (libopus's application), each with the bitrate and complexity
 * measured for it (docs/benchmarks.md, "Opus encoder"):
 * - `restricted-lowdelay`: CELT only, 64 kb/s, complexity 0. Scores the same for speech as `voip`
 *   (PESQ 4.1–4.2 at 16 kHz) at a fifth of its encoding time and with 2.5 ms of look-ahead instead
 *   of 6.5, for about twice the bits while the agent talks (160 bytes a frame against 60–80).
 * - `voip`: the speech-tuned SILK modes (hybrid above 16 kHz), 32 kb/s, complexity 5: half the bits,
 *   SILK's speech concealment at the receiver, five times the CPU. What browsers send.
 */
export const OPUS_APPLICATIONS = ['restricted-lowdelay', 'voip'] as const;
export type OpusApplication = (typeof OPUS_APPLICATIONS)[number];

/** A transceiver's, and a pool's, unless they name another. */
export const DEFAULT_OPUS_APPLICATION: OpusApplication = 'restricted-lowdelay';

export const OPUS_APPLICATION_DEFAULTS: Readonly<
  Record<OpusApplication, { readonly bitrate: number; readonly complexity: number }>
> = {
  'restricted-lowdelay': { bitrate: 64_000, complexity: 0 },
  voip: { bitrate: 32_000, complexity: 5 },
};
