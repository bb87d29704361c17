// `npm start`: the whole edge on this machine, no Kubernetes, no Redis, no configuration file.
import pino from 'pino';
import { formatHostPort } from '../protocol/host-port.ts';
import { startLocalEdge } from './edge.ts';
import { type LocalFlags, parseLocalFlags, USAGE } from './flags.ts';

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge: ${message}\n`);
  process.exit(code);
}

const parsed = parseLocalFlags(process.argv.slice(2));
if (parsed.kind === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (parsed.kind === 'error') fail(`${parsed.message}\n${USAGE}`, 2);
const flags: LocalFlags = parsed.flags;

const logger = pino({ name: 'voice-edge', level: flags['log-level'] });
let edge: Awaited<ReturnType<typeof startLocalEdge>>;
try {
  edge = await startLocalEdge(
    {
      host: flags.host,
      httpPort: flags['http-port'],
      relayPort: flags['relay-port'],
      echoDelayMs: flags['echo-delay-ms'],
      sampleRate: flags['sample-rate'],
      backendProtocol: flags['backend-protocol'],
      backendUrl: flags['backend-url'],
    },
    logger,
  );
} catch (error) {
  const { message } = error as Error;
  // Name the option whose port is taken (the message carries the address that failed).
  const taken = (['http-port', 'relay-port'] as const).filter((name) => message.includes(`:${flags[name]}`));
  const hint = /EADDRINUSE|address already in use/i.test(message)
    ? ` (choose another with ${(taken.length > 0 ? taken : ['http-port', 'relay-port']).map((n) => `--${n}`).join(' / ')})`
    : '';
  fail(`could not start: ${message}${hint}`, 1);
}

process.stdout.write(
  [
    flags['backend-url'] === undefined
      ? 'voice-edge is running on this machine: echo agent, transceiver, relay, signaling.'
      : 'voice-edge is running on this machine: transceiver, relay, signaling.',
    ...(flags['backend-url'] === undefined
      ? []
      : [`  backend     ${flags['backend-url']} (${flags['backend-protocol']})`]),
    `  open        ${edge.url}`,
    `  WHIP        ${edge.whipUrl}`,
    `  media       ${formatHostPort(flags.host, flags['relay-port'])} (UDP, and TCP where UDP is blocked)`,
    'Ctrl-C stops everything.',
    '',
  ].join('\n'),
);

let stoppingSince: number | undefined;
const stop = (signal: NodeJS.Signals) => {
  if (stoppingSince !== undefined) {
    // Ctrl-C under `npm start` can arrive twice at once: from the terminal (to the whole process
    // group) and forwarded by npm when its shell exec'd node (bash does). Only a later one counts.
    if (Date.now() - stoppingSince < 1_000) return;
    fail(`second ${signal}: exiting at once`, 1);
  }
  stoppingSince = Date.now();
  process.stdout.write('stopping…\n');
  edge.shutdown().then(() => {
    process.stdout.write('stopped.\n');
    process.exit(0);
  });
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
