// The Pipecat bot's Python: a virtual environment with requirements.txt installed, made once per
// requirements file in the project's cache outside the work tree (config/cache-dir.ts,
// `pipecat-venv-<hash of requirements.txt>`), so a changed pin makes a new one. Used by
// `npm run agent:pipecat`, by .ci/run (`npm run agent:pipecat -- --setup`) and by the e2e test.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../config/cache-dir.ts';

export const BOT_SCRIPT = fileURLToPath(new URL('./bot.py', import.meta.url));
const REQUIREMENTS = fileURLToPath(new URL('./requirements.txt', import.meta.url));
/** Written last: a venv without it is a broken or interrupted install, made again. */
const READY = '.voice-edge-ready';

function run(command: string, args: string[], quiet: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8192);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8192);
      if (!quiet) process.stderr.write(chunk);
    });
    child.once('error', (error) =>
      reject(new Error(`could not run ${command}: ${error.message} (is Python 3 with venv installed?)`)),
    );
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}

export async function pipecatVenvDir(): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(REQUIREMENTS))
    .digest('hex')
    .slice(0, 12);
  return join(cacheDir(), `pipecat-venv-${hash}`);
}

/**
 * The venv's python, installing the venv first if needed (about half a minute, once). `quiet`: pip's
 * progress is kept back and only shown if it fails (tests); otherwise it goes to the terminal.
 * `$PYTHON` names the interpreter that makes the venv (default `python3`).
 */
export async function pipecatPython({ quiet = false } = {}): Promise<string> {
  const dir = await pipecatVenvDir();
  const python = join(dir, 'bin', 'python');
  if (existsSync(join(dir, READY))) return python;
  const base = process.env.PYTHON || 'python3';
  // pipecat-ai 1.14 needs 3.11: say so, rather than let pip report that no version matches.
  await run(base, ['-c', 'import sys; sys.exit(sys.version_info < (3, 11))'], true).catch((error: Error) => {
    if (error.message.startsWith('could not run')) throw error;
    throw new Error(`${base} is not Python 3.11 or newer, which pipecat-ai needs: set $PYTHON to one`);
  });
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run(base, ['-m', 'venv', dir], quiet);
  await run(
    python,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '-r', REQUIREMENTS],
    quiet,
  );
  await writeFile(join(dir, READY), `${new Date().toISOString()}\n`);
  return python;
}
