// `npm run agent:pipecat -- [--port 8765] [--greeting-s 6] [--idle-hang-up-s 10]`: the Pipecat echo
// bot (bot.py), in its cached virtual environment (installed on first use). `-- --setup` only
// installs it and prints the venv's python (.ci/run does that before the tests). Every other option
// goes to bot.py (`-- --help` lists them).
import { spawn } from 'node:child_process';
import { BOT_SCRIPT, pipecatPython } from './venv.ts';

const args = process.argv.slice(2);
let python: string;
try {
  python = await pipecatPython();
} catch (error) {
  process.stderr.write(`voice-edge pipecat agent: ${(error as Error).message}\n`);
  process.exit(1);
}
if (args.includes('--setup')) {
  process.stdout.write(`${python}\n`);
} else {
  // -u: the bot's JSON event lines reach a pipe at once.
  const bot = spawn(python, ['-u', BOT_SCRIPT, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => bot.kill(signal));
  bot.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
