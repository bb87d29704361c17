// `npm start`: the whole edge on this machine, no Kubernetes, no Redis, no configuration file.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { formatIssues } from '../protocol/routing-table.ts';
import { startLocalEdge } from './edge.ts';

const usage = `usage: npm start -- [--host 127.0.0.1] [--http-port 8080] [--relay-port 3478]
                      [--echo-delay-ms 500] [--sample-rate 16000] [--log-level warn]`;

const Flags = z.object({
  host: z.union([z.ipv4(), z.ipv6()]),
  'http-port': z.coerce.number().int().min(0).max(65535),
  'relay-port': z.coerce.number().int().min(1).max(65535),
  'echo-delay-ms': z.coerce.number().int().min(0).max(10_000),
  'sample-rate': z.coerce
    .number()
    .pipe(z.union([z.literal(8000), z.literal(12000), z.literal(16000), z.literal(24000), z.literal(48000)])),
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
    fail(`invalid option: ${formatIssues(parsed.error).replace(/^([a-z-]+):/, '--$1:')}\n${usage}`, 2);
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
  const hint = /EADDRINUSE|address already in use/i.test(message)
    ? ' (choose another with --http-port / --relay-port)'
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

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) fail(`second ${signal}: exiting at once`, 1);
  stopping = true;
  process.stdout.write('stopping…\n');
  edge.shutdown().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
