// Builds tun-open.c with the system C compiler (as bench:relay builds its load generator) into a
// cache outside the work tree, keyed by a hash of compiler, flags and source.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FLAGS = ['-O2', '-Wall', '-Wextra'];

function cacheDir(env: NodeJS.ProcessEnv): string {
  if (env.VOICE_EDGE_CACHE_DIR) return join(env.VOICE_EDGE_CACHE_DIR, 'wan');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'voice-edge', 'wan');
}

/** The path of the compiled tun-open, built on first use. */
export function buildTunOpen(env: NodeJS.ProcessEnv = process.env): string {
  const cc = env.CC || 'cc';
  const source = fileURLToPath(new URL('./tun-open.c', import.meta.url));
  let compiler: string;
  try {
    compiler = execFileSync(cc, ['--version'], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(
      `cannot run the C compiler "${cc}" (install gcc, or set CC): ${(error as Error).message}`,
    );
  }
  const hash = createHash('sha256')
    .update(compiler)
    .update(FLAGS.join(' '))
    .update(readFileSync(source))
    .digest('hex')
    .slice(0, 16);
  const dir = cacheDir(env);
  const output = join(dir, `tun-open-${hash}`);
  if (existsSync(output)) return output;
  mkdirSync(dir, { recursive: true });
  const temporary = `${output}.tmp-${process.pid}`;
  try {
    execFileSync(cc, [...FLAGS, '-o', temporary, source], { stdio: ['ignore', 'inherit', 'inherit'] });
    renameSync(temporary, output);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`compiling ${source} failed: ${(error as Error).message}`);
  }
  return output;
}
