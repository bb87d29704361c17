// What each Opus encoder setting costs and what it sounds like (docs/benchmarks.md, "Opus
// encoder"): the benchmark's two espeak-ng voices at 16 kHz through the transceiver's own encoder,
// for each application (audio/opus-application.ts) at its bitrate (and CELT at 48 kb/s) and
// complexities 0–10, and back through its decoder; the encoder's time and bytes per 20 ms frame,
// and the decoded speech scored against the original with PESQ (ITU-T P.862.2, wideband) when a
// Python with the `pesq` package is at hand:
//
//   python3 -m venv ~/.cache/voice-edge/pesq
//   ~/.cache/voice-edge/pesq/bin/pip install pesq==0.0.4 numpy==2.4.6
//   taskset -c 0 npm run bench:opus -- --python ~/.cache/voice-edge/pesq/bin/python
//
// Without `--python` (or VOICE_EDGE_PESQ_PYTHON) it prints the costs only. Needs espeak-ng and sox.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  OPUS_APPLICATION_DEFAULTS,
  OPUS_APPLICATIONS,
  type OpusApplication,
} from '../../audio/opus-application.ts';
import { OpusFrameDecoder, OpusFrameEncoder } from '../../audio/opus-codec.ts';
import { AGENT_TEXT, CALLER_TEXT, speak } from './speech.ts';

const RATE = 16_000;
const COMPLEXITIES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/** Each application at the bitrate it runs at, every complexity; CELT also at 48 kb/s, a few. */
const SETTINGS: { application: OpusApplication; bitrate: number; complexity: number }[] = [
  ...OPUS_APPLICATIONS.flatMap((application) =>
    COMPLEXITIES.map((complexity) => ({
      application,
      bitrate: OPUS_APPLICATION_DEFAULTS[application].bitrate,
      complexity,
    })),
  ),
  ...[0, 5, 10].map((complexity) => ({
    application: 'restricted-lowdelay' as const,
    bitrate: 48_000,
    complexity,
  })),
];

const { values } = parseArgs({ options: { python: { type: 'string' }, help: { type: 'boolean' } } });
if (values.help) {
  process.stdout.write('usage: node bench/transceiver/opus-quality.ts [--python PYTHON_WITH_PESQ]\n');
  process.exit(0);
}
const python = values.python ?? process.env.VOICE_EDGE_PESQ_PYTHON;

/** PESQ WB of `degraded` against `reference` (PCM16LE mono files at RATE), by the Python at hand. */
function pesqScore(reference: string, degraded: string): number {
  const script = [
    'import sys, numpy as np',
    'from pesq import pesq',
    "ref = np.fromfile(sys.argv[1], dtype='<i2').astype(np.float32)",
    "deg = np.fromfile(sys.argv[2], dtype='<i2').astype(np.float32)",
    'n = min(len(ref), len(deg))',
    `print(pesq(${RATE}, ref[:n], deg[:n], 'wb'))`,
  ].join('\n');
  return Number(execFileSync(python!, ['-c', script, reference, degraded], { encoding: 'utf8' }).trim());
}

const dir = mkdtempSync(join(tmpdir(), 'voice-edge-opus-quality-'));
try {
  const voices = {
    caller: speak(CALLER_TEXT, 'en-us', RATE, dir),
    agent: speak(AGENT_TEXT, 'en-gb+f3', RATE, dir),
  };
  const rows: {
    application: OpusApplication;
    bitrate: number;
    complexity: number;
    encodeUs: number;
    bytesPerFrame: number;
    pesq: Record<string, number | null>;
  }[] = [];
  for (const { application, bitrate, complexity } of SETTINGS) {
    let encodeNs = 0;
    let frames = 0;
    let bytes = 0;
    const pesq: Record<string, number | null> = {};
    for (const [name, pcm] of Object.entries(voices)) {
      const encoder = new OpusFrameEncoder(RATE, { application, bitrate, complexity });
      const decoder = new OpusFrameDecoder(RATE);
      const decoded: Buffer[] = [];
      for (let at = 0; at + encoder.frameBytes <= pcm.length; at += encoder.frameBytes) {
        const started = process.hrtime.bigint();
        const packet = encoder.encode(pcm.subarray(at, at + encoder.frameBytes));
        encodeNs += Number(process.hrtime.bigint() - started);
        frames++;
        bytes += packet.length;
        decoded.push(decoder.decode(packet));
      }
      if (python === undefined) {
        pesq[name] = null;
        continue;
      }
      const reference = join(dir, `${name}.raw`);
      const degraded = join(dir, `${name}-${application}-${bitrate}-${complexity}.raw`);
      writeFileSync(reference, pcm);
      writeFileSync(degraded, Buffer.concat(decoded));
      pesq[name] = pesqScore(reference, degraded);
    }
    rows.push({
      application,
      bitrate,
      complexity,
      encodeUs: encodeNs / 1000 / frames,
      bytesPerFrame: bytes / frames,
      pesq,
    });
  }
  const score = (value: number | null | undefined) =>
    value == null ? '   n/a' : value.toFixed(2).padStart(6);
  process.stdout.write(
    `Opus at ${RATE} Hz: encode time and bytes per 20 ms frame (espeak-ng speech) and PESQ WB of the decoded speech\n` +
      'application          kb/s  complexity  encode µs  bytes  PESQ caller  PESQ agent\n' +
      rows
        .map(
          (row) =>
            `${row.application.padEnd(19)}  ${String(row.bitrate / 1000).padStart(4)}  ${String(row.complexity).padStart(10)}  ${row.encodeUs.toFixed(1).padStart(9)}  ${row.bytesPerFrame.toFixed(0).padStart(5)}  ${score(row.pesq.caller).padStart(11)}  ${score(row.pesq.agent).padStart(10)}`,
        )
        .join('\n') +
      `\n${python === undefined ? 'PESQ: not scored (pass --python, a Python with the pesq package; see the header of this file)\n' : ''}`,
  );
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'opus-quality', version: 2, sampleRate: RATE, rows })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
