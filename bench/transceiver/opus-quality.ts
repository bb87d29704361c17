// What each Opus complexity costs and what it sounds like (docs/benchmarks.md, "Opus complexity"):
// the benchmark's two espeak-ng voices at 16 kHz through the transceiver's own encoder (VoIP,
// 32 kb/s) at complexities 0–10 and back through its decoder; the encoder's time per 20 ms frame,
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
import { OpusFrameDecoder, OpusFrameEncoder } from '../../audio/opus-codec.ts';
import { AGENT_TEXT, CALLER_TEXT, speak } from './speech.ts';

const RATE = 16_000;
const COMPLEXITIES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

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
  const rows: { complexity: number; encodeUs: number; pesq: Record<string, number | null> }[] = [];
  for (const complexity of COMPLEXITIES) {
    let encodeNs = 0;
    let frames = 0;
    const pesq: Record<string, number | null> = {};
    for (const [name, pcm] of Object.entries(voices)) {
      const encoder = new OpusFrameEncoder(RATE, { complexity });
      const decoder = new OpusFrameDecoder(RATE);
      const decoded: Buffer[] = [];
      for (let at = 0; at + encoder.frameBytes <= pcm.length; at += encoder.frameBytes) {
        const started = process.hrtime.bigint();
        const packet = encoder.encode(pcm.subarray(at, at + encoder.frameBytes));
        encodeNs += Number(process.hrtime.bigint() - started);
        frames++;
        decoded.push(decoder.decode(packet));
      }
      if (python === undefined) {
        pesq[name] = null;
        continue;
      }
      const reference = join(dir, `${name}.raw`);
      const degraded = join(dir, `${name}-${complexity}.raw`);
      writeFileSync(reference, pcm);
      writeFileSync(degraded, Buffer.concat(decoded));
      pesq[name] = pesqScore(reference, degraded);
    }
    rows.push({ complexity, encodeUs: encodeNs / 1000 / frames, pesq });
  }
  const score = (value: number | null | undefined) =>
    value == null ? '   n/a' : value.toFixed(2).padStart(6);
  process.stdout.write(
    `Opus at ${RATE} Hz, VoIP, 32 kb/s: encode time per 20 ms frame (espeak-ng speech) and PESQ WB of the decoded speech\n` +
      'complexity  encode µs  PESQ caller  PESQ agent\n' +
      rows
        .map(
          (row) =>
            `${String(row.complexity).padStart(10)}  ${row.encodeUs.toFixed(1).padStart(9)}  ${score(row.pesq.caller).padStart(11)}  ${score(row.pesq.agent).padStart(10)}`,
        )
        .join('\n') +
      `\n${python === undefined ? 'PESQ: not scored (pass --python, a Python with the pesq package; see the header of this file)\n' : ''}`,
  );
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'opus-quality', sampleRate: RATE, bitrate: 32_000, rows })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
