// Test tones and what can be measured on them: a sine generator and two cheap measurements
// (frequency, level) that survive a lossy codec. Used by the audio unit tests and the end-to-end
// tests to check that audio went through a path intact. Mono PCM16LE throughout. Pure.

/**
 * A sine of `frequencyHz` lasting `durationMs` (rounded to whole samples), as PCM16LE mono.
 * `amplitude` is a fraction of full scale. Samples are numbered from `startSample`, so two calls
 * with consecutive ranges join without a phase jump.
 */
export function sine(
  frequencyHz: number,
  sampleRate: number,
  durationMs: number,
  amplitude = 0.5,
  startSample = 0,
): Buffer {
  const samples = Math.round((sampleRate * durationMs) / 1000);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    const value = amplitude * 32767 * Math.sin((2 * Math.PI * frequencyHz * (startSample + i)) / sampleRate);
    pcm.writeInt16LE(Math.round(value), i * 2);
  }
  return pcm;
}

function samplesOf(pcm: Buffer): Int16Array {
  const samples = new Int16Array(pcm.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = pcm.readInt16LE(i * 2);
  return samples;
}

/**
 * The frequency of the dominant tone in `pcm`, from its upward zero crossings (0 for silence).
 *
 * Crossings are located to a fraction of a sample by linear interpolation, and one counts only
 * after the signal has gone below -10 % of its peak, so codec noise around zero does not add
 * crossings. Meant for one tone at a time (what the tests send), not for mixtures.
 */
export function dominantFrequency(pcm: Buffer, sampleRate: number): number {
  const samples = samplesOf(pcm);
  if (samples.length < 2) return 0;
  let mean = 0;
  for (const s of samples) mean += s;
  mean /= samples.length;
  let peak = 0;
  for (const s of samples) peak = Math.max(peak, Math.abs(s - mean));
  if (peak < 1) return 0;
  const hysteresis = peak * 0.1;
  let armed = false;
  let first = -1;
  let last = -1;
  let crossings = 0;
  let previous = samples[0]! - mean;
  for (let i = 1; i < samples.length; i++) {
    const current = samples[i]! - mean;
    if (current < -hysteresis) armed = true;
    if (armed && previous < 0 && current >= 0) {
      const at = i - 1 + -previous / (current - previous);
      if (first < 0) first = at;
      last = at;
      crossings++;
      armed = false;
    }
    previous = current;
  }
  if (crossings < 2) return 0;
  return ((crossings - 1) * sampleRate) / (last - first);
}

/** Root mean square level of `pcm` as a fraction of full scale (0 for digital silence). */
export function rms(pcm: Buffer): number {
  const samples = samplesOf(pcm);
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length) / 32768;
}
