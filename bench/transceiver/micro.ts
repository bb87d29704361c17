// Micro-benchmarks behind the transceiver benchmark's profile (docs/benchmarks.md): what one 20 ms
// frame costs in the two places where the transceiver spends most of its CPU.
//
//   npx node bench/transceiver/micro.ts    (pin it for steadier figures: taskset -c 0 npx node …)
//
// 1. Opus encoding (the transceiver's OpusFrameEncoder: libopus through @evan/opus, 16 kHz, VoIP,
//    32 kb/s) of digital silence, of the benchmark's tone, and at lower complexities.
// 2. The per-packet AES-GCM cipher werift builds for SRTP: createCipheriv with the session key as a
//    Buffer (what werift 0.25 does for every packet) against a KeyObject made once per session.
import { createCipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { Encoder } from '@evan/opus';
import { sine } from '../../audio/tone.ts';

function timeUs(iterations: number, body: (i: number) => void): number {
  for (let i = 0; i < Math.min(200, iterations); i++) body(i);
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body(i);
  return Number(process.hrtime.bigint() - started) / 1000 / iterations;
}

const rate = 16_000;
const silence = Buffer.alloc((rate / 50) * 2);
const tone = sine(440, rate, 20, 0.3);
type Complexity = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
const rows: string[] = [];
for (const complexity of [undefined, 5, 3, 1] as const) {
  const cost = (pcm: Buffer) => {
    const encoder = new Encoder({ channels: 1, sample_rate: rate, application: 'voip' });
    encoder.bitrate = 32_000;
    if (complexity !== undefined) encoder.complexity = complexity as Complexity;
    const us = timeUs(2000, () => encoder.encode(pcm));
    return { us, complexity: encoder.complexity };
  };
  const quiet = cost(silence);
  const loud = cost(tone);
  rows.push(
    `  complexity ${String(quiet.complexity).padStart(2)}${complexity === undefined ? ' (default)' : '          '}` +
      `  silence ${quiet.us.toFixed(1).padStart(6)} µs   440 Hz tone ${loud.us.toFixed(1).padStart(6)} µs`,
  );
}
process.stdout.write(`Opus encode, one 20 ms frame at ${rate} Hz (VoIP, 32 kb/s):\n${rows.join('\n')}\n`);

const key = randomBytes(16);
const keyObject = createSecretKey(key);
const payload = randomBytes(60);
const header = randomBytes(12);
const seal = (k: Buffer | ReturnType<typeof createSecretKey>) => (i: number) => {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(i, 8);
  const cipher = createCipheriv('aes-128-gcm', k, iv);
  cipher.setAAD(header);
  cipher.update(payload);
  cipher.final();
  cipher.getAuthTag();
};
const withBuffer = timeUs(50_000, seal(key));
const withKeyObject = timeUs(50_000, seal(keyObject));
process.stdout.write(
  `SRTP AES-128-GCM, one 60-byte packet, a new cipher per packet:\n` +
    `  key as a Buffer (werift)   ${withBuffer.toFixed(1).padStart(6)} µs\n` +
    `  key as a KeyObject         ${withKeyObject.toFixed(1).padStart(6)} µs\n`,
);
