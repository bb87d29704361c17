// What the command-line caller measures on the stream the edge sends back: loss and jitter from the
// RTP headers (RFC 3550 §6.4.1, A.3, A.8), and whether the decoded audio carries the tone it sent.
// Pure: times are passed in.
import { dominantFrequency, rms } from '../audio/tone.ts';

/** Loss and interarrival jitter of one received RTP stream. */
export class RtpReceiveStats {
  readonly clockRate: number;
  /** Packets received (duplicates included, as RFC 3550 counts them). */
  received = 0;
  /** Extended sequence numbers of the first and highest packet, NaN before the first. */
  #first = Number.NaN;
  #highest = Number.NaN;
  /** Interarrival jitter in timestamp units, NaN before the second packet. */
  #jitter = Number.NaN;
  #lastTransit = Number.NaN;

  constructor(clockRate = 48_000) {
    this.clockRate = clockRate;
  }

  /** One packet: its sequence number, its RTP timestamp and when it arrived (ms). */
  onPacket(sequenceNumber: number, timestamp: number, arrivalMs: number): void {
    this.received++;
    if (Number.isNaN(this.#highest)) {
      this.#first = sequenceNumber;
      this.#highest = sequenceNumber;
    } else {
      // The closest extension of the 16-bit number to the highest seen: handles wrap and reordering.
      const delta = ((sequenceNumber - (this.#highest & 0xffff) + 0x8000) & 0xffff) - 0x8000;
      const extended = this.#highest + delta;
      if (extended > this.#highest) this.#highest = extended;
      if (extended < this.#first) this.#first = extended;
    }
    // Transit time in timestamp units; only differences matter, so the RTP clock's origin cancels.
    // Timestamps are unwrapped against the arrival clock through the 32-bit difference.
    const arrival = (arrivalMs * this.clockRate) / 1000;
    const transit = arrival - timestamp;
    if (!Number.isNaN(this.#lastTransit)) {
      let d = transit - this.#lastTransit;
      d = ((((d + 0x8000_0000) % 0x1_0000_0000) + 0x1_0000_0000) % 0x1_0000_0000) - 0x8000_0000;
      const jitter = Number.isNaN(this.#jitter) ? 0 : this.#jitter;
      this.#jitter = jitter + (Math.abs(d) - jitter) / 16;
    }
    this.#lastTransit = transit;
  }

  /** Packets the sequence numbers say were sent, first to highest (0 before any arrived). */
  get expected(): number {
    return Number.isNaN(this.#highest) ? 0 : this.#highest - this.#first + 1;
  }

  get lost(): number {
    return Math.max(0, this.expected - this.received);
  }

  /** Lost / expected, undefined before any packet arrived. */
  get lossRatio(): number | undefined {
    return this.expected === 0 ? undefined : this.lost / this.expected;
  }

  /** Interarrival jitter in ms, undefined before two packets arrived. */
  get jitterMs(): number | undefined {
    return Number.isNaN(this.#jitter) ? undefined : (this.#jitter * 1000) / this.clockRate;
  }
}

export interface EchoDetectorOptions {
  readonly toneHz: number;
  readonly sampleRate: number;
  /** How far the heard frequency may be from the tone (Hz, default 10). */
  readonly toleranceHz?: number;
  /** RMS (fraction of full scale) above which a frame is not silence (default 0.01, -40 dBFS). */
  readonly minLevel?: number;
  /** Consecutive frames with the tone it takes to call it heard (default 3, i.e. 60 ms). */
  readonly minFrames?: number;
}

export interface EchoHeard {
  /** Arrival time (ms) of the first frame of the first run that qualified. */
  readonly atMs: number;
  /** Mean frequency (Hz) and RMS level over that run. */
  readonly frequencyHz: number;
  readonly level: number;
}

/** Finds the tone in decoded frames: a run of frames at the tone's frequency, above silence. */
export class EchoDetector {
  readonly #toneHz: number;
  readonly #sampleRate: number;
  readonly #toleranceHz: number;
  readonly #minLevel: number;
  readonly #minFrames: number;
  #run: { atMs: number; frequencies: number[]; levels: number[] } | undefined;
  #heard: EchoHeard | undefined;
  /** Loudest frame seen (RMS) and its frequency, for a diagnosis when the tone is not found. */
  loudest = { level: 0, frequencyHz: 0 };

  constructor(options: EchoDetectorOptions) {
    this.#toneHz = options.toneHz;
    this.#sampleRate = options.sampleRate;
    this.#toleranceHz = options.toleranceHz ?? 10;
    this.#minLevel = options.minLevel ?? 0.01;
    this.#minFrames = options.minFrames ?? 3;
  }

  get heard(): EchoHeard | undefined {
    return this.#heard;
  }

  /** One decoded frame (PCM16LE mono) that arrived at `arrivalMs`. */
  onFrame(pcm: Buffer, arrivalMs: number): void {
    const level = rms(pcm);
    const frequencyHz = level >= this.#minLevel ? dominantFrequency(pcm, this.#sampleRate) : 0;
    if (level > this.loudest.level) this.loudest = { level, frequencyHz };
    if (this.#heard !== undefined) return;
    if (level < this.#minLevel || Math.abs(frequencyHz - this.#toneHz) > this.#toleranceHz) {
      this.#run = undefined;
      return;
    }
    this.#run ??= { atMs: arrivalMs, frequencies: [], levels: [] };
    this.#run.frequencies.push(frequencyHz);
    this.#run.levels.push(level);
    if (this.#run.frequencies.length >= this.#minFrames) {
      const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
      this.#heard = {
        atMs: this.#run.atMs,
        frequencyHz: mean(this.#run.frequencies),
        level: mean(this.#run.levels),
      };
      this.#run = undefined;
    }
  }
}
