// The voices of the conversation load (docs/benchmarks.md), made at benchmark time:
//
// - speech: Debian's espeak-ng says a few sentences (the caller's and the agent's differ); sox
//   resamples its 22.05 kHz output with its very-high-quality rate effect (`rate -v`) to 48 kHz
//   for the caller (what a browser's Opus encoder takes) and to the backend's rate for the agent,
//   normalized to -3 dBFS peak;
// - tone (`--speech tone`): the 440 Hz tone of the tone workload, continuous, for both sides;
// - the caller's microphone is never digitally silent: white noise at NOISE_DBFS (RMS) runs under
//   its speech and alone between its turns, as a real microphone's floor.
//
// The caller's audio is pre-encoded to Opus here, once per run, with the transceiver's own encoder
// (as stream.ts does for the tone cycle): callers only copy frames into RTP packets. The agent gets
// raw PCM16LE at the backend's rate, in a file, and streams it as it is.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpusFrameEncoder } from '../../audio/opus-codec.ts';
import { sine } from '../../audio/tone.ts';
import { frameBytes, type SampleRate } from '../../protocol/backend.ts';
import { rng } from './conversation.ts';
import { SEND_RATE, TONE_HZ } from './stream.ts';

/** The caller's noise floor, RMS relative to full scale (dB). */
export const NOISE_DBFS = -60;
/** Frames of the noise loop between the caller's turns (2 s). */
const NOISE_FRAMES = 100;

export const CALLER_TEXT =
  'Hello, I would like to change the delivery address of my order. It was supposed to arrive on ' +
  'Thursday, but I will be away until the weekend. Could you send it to my office instead? ' +
  'The address is twelve Market Street, second floor. Thank you, that sounds perfect.';
export const AGENT_TEXT =
  'Of course, I can help you with that. Let me look up your order first. I can see it is ' +
  'scheduled for Thursday morning. I have updated the delivery address to your office, and you ' +
  'will receive a confirmation by email in a few minutes. Is there anything else I can do for you?';

export type SpeechKind = 'speech' | 'tone';

export interface CallerVoice {
  /** The rate the caller's audio was made and encoded at (Hz). */
  readonly rate: SampleRate;
  /** Opus frames (20 ms) of the caller talking, looped during its turns. */
  readonly speech: readonly Buffer[];
  /** Opus frames of the noise floor alone, looped between its turns. */
  readonly noise: readonly Buffer[];
  /**
   * The same, encoded with libopus's DTX, for an answer with `usedtx=1`: silence (a pause in the
   * speech, the noise floor) becomes one-byte frames, which the caller leaves unsent after the
   * first, as a browser does (caller.ts).
   */
  readonly dtx: { readonly speech: readonly Buffer[]; readonly noise: readonly Buffer[] };
}

export interface Voices {
  readonly kind: SpeechKind;
  /** The caller's voice encoded at each rate an answer may ask for (see forPlaybackRate). */
  readonly caller: readonly CallerVoice[];
  /** PCM16LE mono at the backend's rate: what the agent says, looped over its turns. */
  readonly agentPcmFile: string;
  readonly agentSeconds: number;
  readonly callerSeconds: number;
  /** How they were made, for the JSON. */
  readonly source: string;
}

/** espeak-ng → sox: PCM16LE mono at `rate`, normalized, whole 20 ms frames. */
export function speak(text: string, voice: string, rate: SampleRate, dir: string): Buffer {
  const wav = join(dir, `espeak-${voice.replace(/\W/g, '_')}.wav`);
  execFileSync('espeak-ng', ['-v', voice, '-s', '160', '-w', wav, text], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const raw = join(dir, `speech-${voice.replace(/\W/g, '_')}-${rate}.raw`);
  execFileSync(
    'sox',
    [
      wav,
      '-t',
      'raw',
      '-e',
      'signed-integer',
      '-b',
      '16',
      '-c',
      '1',
      '-L',
      raw,
      'gain',
      '-n',
      '-3',
      'rate',
      '-v',
      String(rate),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const pcm = readFileSync(raw);
  const frame = frameBytes(rate);
  return pcm.subarray(0, pcm.length - (pcm.length % frame));
}

/** White noise at `dbfs` RMS added to PCM16LE (in place), seeded. */
export function addNoise(pcm: Buffer, dbfs: number, seed: number): Buffer {
  const random = rng(seed);
  // Uniform in [-a, a] has RMS a / √3.
  const amplitude = 32768 * 10 ** (dbfs / 20) * Math.sqrt(3);
  for (let i = 0; i + 1 < pcm.length; i += 2) {
    const value = pcm.readInt16LE(i) + Math.round((random() * 2 - 1) * amplitude);
    pcm.writeInt16LE(Math.max(-32768, Math.min(32767, value)), i);
  }
  return pcm;
}

/**
 * Opus frames of `pcm` (at `rate`), encoded twice in a row with one encoder and the second pass kept,
 * so the loop joins without a glitch (the encoder's state at the end matches the start's).
 */
export function encodeLoop(pcm: Buffer, rate: SampleRate, options: { dtx?: boolean } = {}): Buffer[] {
  const encoder = new OpusFrameEncoder(rate, options);
  let frames: Buffer[] = [];
  for (let pass = 0; pass < 2; pass++) {
    frames = [];
    for (let at = 0; at + encoder.frameBytes <= pcm.length; at += encoder.frameBytes) {
      frames.push(encoder.encode(pcm.subarray(at, at + encoder.frameBytes)));
    }
  }
  return frames;
}

/**
 * Makes both voices in `dir` (espeak-ng and sox for speech): the agent's at the backend's rate, the
 * caller's at 48 kHz (what a browser sends unless told less) and at the backend's rate (what it
 * sends when the answer's maxplaybackrate says so).
 */
export function makeVoices(kind: SpeechKind, backendRate: SampleRate, dir: string): Voices {
  const callerPcm = (rate: SampleRate) =>
    kind === 'speech'
      ? speak(CALLER_TEXT, 'en-us', rate, dir)
      : // 440 Hz: a whole number of periods per second, so 1 s loops without a phase jump.
        sine(TONE_HZ, rate, 1000, 0.3);
  const agentPcm =
    kind === 'speech'
      ? speak(AGENT_TEXT, 'en-gb+f3', backendRate, dir)
      : sine(TONE_HZ, backendRate, 1000, 0.3);
  const source =
    kind === 'speech'
      ? `espeak-ng (en-us caller, en-gb+f3 agent, 160 wpm), sox gain -n -3 rate -v; caller + white noise ${NOISE_DBFS} dBFS`
      : `${TONE_HZ} Hz sine, 0.3 of full scale; caller + white noise ${NOISE_DBFS} dBFS`;
  const caller = [...new Set<SampleRate>([SEND_RATE, backendRate])].map((rate): CallerVoice => {
    const speech = addNoise(callerPcm(rate), NOISE_DBFS, 1);
    const noise = addNoise(Buffer.alloc(frameBytes(rate) * NOISE_FRAMES), NOISE_DBFS, 2);
    return {
      rate,
      speech: encodeLoop(speech, rate),
      noise: encodeLoop(noise, rate),
      dtx: { speech: encodeLoop(speech, rate, { dtx: true }), noise: encodeLoop(noise, rate, { dtx: true }) },
    };
  });
  const agentPcmFile = join(dir, `agent-${backendRate}.raw`);
  writeFileSync(agentPcmFile, agentPcm);
  return {
    kind,
    caller,
    agentPcmFile,
    agentSeconds: agentPcm.length / 2 / backendRate,
    callerSeconds: caller[0]!.speech.length / 50,
    source,
  };
}
