// How fast one core runs right now: a fixed piece of work (integer arithmetic and SHA-256, as the
// media path mixes JavaScript and native code) timed in a child process pinned to the core, best of
// five. Steal time shows a hypervisor taking a core away; it does not show a host that runs the
// vCPU slower (shared caches, frequency), which on this project's 2-vCPU VMs moved the same work
// between 40 and 62 ms within minutes. A run reports the probe before its first step and after its
// last, on the idle core, so two runs' figures can be told apart by the machine they ran on.
import { execFileSync } from 'node:child_process';

const WORK = `
const { createHash } = require('node:crypto');
const buf = Buffer.alloc(1024, 7);
let best = Infinity;
for (let r = 0; r < 5; r++) {
  const t = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < 3e6; i++) x = (x + Math.imul(i, 2654435761)) | 0;
  for (let i = 0; i < 2e4; i++) createHash('sha256').update(buf).digest();
  best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
}
process.stdout.write(String(best));
`;

/** Milliseconds the fixed work takes on `core` (best of five), or NaN when it cannot be run. */
export function coreSpeedMs(core: number): number {
  try {
    const out = execFileSync('taskset', ['-c', String(core), process.execPath, '-e', WORK], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    return Number(out);
  } catch {
    return Number.NaN;
  }
}
