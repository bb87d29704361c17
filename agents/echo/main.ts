// `npm run agent:echo -- --port 8081 --delay-ms 500 [--host 127.0.0.1]` (or `voice-edge echo-agent
// …` in the image): the echo backend on its own. Options only; it needs no configuration file.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { commandFor } from '../../config/invocation.ts';
import { formatHostPort } from '../../protocol/host-port.ts';
import { formatIssues } from '../../protocol/schema.ts';
import { startEchoAgent } from './echo-agent.ts';

const command = commandFor('echo-agent', 'agent:echo');
const usage = `usage: ${command} [--port 8081] [--host 127.0.0.1] [--delay-ms 500]
       ${' '.repeat(command.length)} [--mark-every-ms 1000] [--log-level info]`;

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge echo agent: ${message}\n`);
  process.exit(code);
}

const ArgsSchema = z.strictObject({
  host: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535),
  'delay-ms': z.coerce.number().int().min(0).max(60_000),
  'mark-every-ms': z.coerce.number().int().min(0),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

let args: z.output<typeof ArgsSchema>;
try {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8081' },
      'delay-ms': { type: 'string', default: '500' },
      'mark-every-ms': { type: 'string', default: '1000' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const { help: _help, ...rest } = values;
  const result = ArgsSchema.safeParse(rest);
  if (!result.success) fail(`${formatIssues(result.error)}\n${usage}`, 2);
  args = result.data;
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}

const logger = pino({ name: 'echo-agent', level: args['log-level'] });
let agent: Awaited<ReturnType<typeof startEchoAgent>> | undefined;

// Installed before the agent starts: it says it is listening before start-up returns, and a
// SIGTERM right after that line must still close it cleanly (exit 0).
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) fail(`second ${signal}: exiting without closing calls`, 1);
  if (agent === undefined) process.exit(0);
  logger.info({ signal, connections: agent.connections }, 'shutting down');
  agent.close().then(
    () => process.exit(0),
    (error: unknown) => fail(`shutdown failed: ${(error as Error).message}`, 1),
  );
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
try {
  agent = await startEchoAgent({
    host: args.host,
    port: args.port,
    delayMs: args['delay-ms'],
    markEveryMs: args['mark-every-ms'],
    logger,
  });
} catch (error) {
  fail(`cannot listen on ${formatHostPort(args.host, args.port)}: ${(error as Error).message}`, 1);
}
