// `npm start`: the whole edge on this machine, no Kubernetes, no Redis, no configuration file.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { formatIssues } from '../protocol/routing-table.ts';
import { startLocalEdge } from './edge.ts';

const usage = `usage: npm start -- [--host 127.0.0.1] [--http-port 8080] [--relay-port 3478]
                      [--echo-delay-ms 500] [--sample-rate 16000] [--log-level warn]`;

/** A whole number in [min, max], with one message for every way of missing it. */
const whole = (min: number, max: number, what = 'a whole number') => {
  const error = `must be ${what} from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const Flags = z.object({
  host: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' }),
  'http-port': whole(0, 65535, 'a port number'),
  'relay-port': whole(1, 65535, 'a port number'),
  'echo-delay-ms': whole(0, 10_000),
  'sample-rate': z.coerce.number().pipe(
    z.union([z.literal(8000), z.literal(12000), z.literal(16000), z.literal(24000), z.literal(48000)], {
      error: 'must be one of 8000, 12000, 16000, 24000, 48000',
    }),
  ),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge: ${message}\n`);
  process.exit(code);
}

let flags: z.output<typeof Flags>;
try {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      'http-port': { type: 'string', default: '8080' },
      'relay-port': { type: 'string', default: '3478' },
      'echo-delay-ms': { type: 'string', default: '500' },
      'sample-rate': { type: 'string', default: '16000' },
      'log-level': { type: 'string', default: 'warn' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const parsed = Flags.safeParse(values);
  if (!parsed.success)
    fail(`invalid option ${formatIssues(parsed.error).replace(/(^|; )([a-z-]+):/g, '$1--$2:')}\n${usage}`, 2);
  flags = parsed.data;
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}

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
    'voice-edge is running on this machine: echo agent, transceiver, relay, signaling.',
    `  open        ${edge.url}`,
    `  WHIP        ${edge.whipUrl}`,
    `  media (UDP) ${flags.host}:${flags['relay-port']}`,
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
