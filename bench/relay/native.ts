// Builds the benchmark's C helpers (loadgen.c, reflector.c) with the system compiler into a cache
// outside the work tree, keyed by a hash of compiler, flags and source: a changed source rebuilds,
// an unchanged one is reused.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const FLAGS = ['-O2', '-Wall', '-Wextra', '-pthread'];

export function benchCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VOICE_EDGE_BENCH_CACHE) return env.VOICE_EDGE_BENCH_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'voice-edge', 'bench');
}

function compilerIdentity(cc: string): string {
  try {
    return execFileSync(cc, ['--version'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(
      `cannot run the C compiler "${cc}" (install gcc, or set CC): ${(error as Error).message}`,
    );
  }
}

/** Returns the path of the compiled program, building it when the cache has no matching binary. */
export function buildNative(name: 'loadgen' | 'reflector', env: NodeJS.ProcessEnv = process.env): string {
  const cc = env.CC || 'cc';
  const sourcePath = new URL(`./${name}.c`, import.meta.url).pathname;
  const source = readFileSync(sourcePath);
  const hash = createHash('sha256')
    .update(compilerIdentity(cc))
    .update(FLAGS.join(' '))
    .update(source)
    .digest('hex')
    .slice(0, 16);
  const dir = benchCacheDir(env);
  const output = join(dir, `${name}-${hash}`);
  if (existsSync(output)) return output;
  mkdirSync(dir, { recursive: true });
  const temporary = `${output}.tmp-${process.pid}`;
  try {
    execFileSync(cc, [...FLAGS, '-o', temporary, sourcePath], { stdio: ['ignore', 'inherit', 'inherit'] });
    renameSync(temporary, output);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`compiling ${sourcePath} failed: ${(error as Error).message}`);
  }
  return output;
}
