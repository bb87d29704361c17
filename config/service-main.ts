// The one way a voice-edge service runs as a process: `[--config <file.yaml>]` (without a file the
// configuration comes only from the service's environment variables, as in a pod), a configuration
// error → one message and exit 2, a start-up error → one message and exit 1, SIGTERM/SIGINT →
// graceful shutdown (a second signal exits at once), exit 0 when stopped (1 if it stopped on its
// own because something failed).
import { parseArgs } from 'node:util';
import pino, { type Logger } from 'pino';
import { ConfigError } from './env-overrides.ts';
import { commandFor } from './invocation.ts';

export interface RunningService {
  shutdown(): Promise<void>;
  /** Resolves when the service has stopped; with an error if it stopped because something failed. */
  readonly stopped: Promise<unknown>;
}

export interface ServiceMainOptions<C extends { log: { level: string } }> {
  /** `relay`, `signaling`, …: the component (`voice-edge <name>`) and the logger's name. */
  readonly name: string;
  /** The npm script that runs it, when not `name`. */
  readonly npmScript?: string;
  /** `file` is undefined when no --config was given: the environment alone configures the service. */
  readonly load: (file: string | undefined) => C;
  readonly start: (config: C, logger: Logger) => Promise<RunningService>;
  /** Errors `start` throws for reasons a person can act on (busy port, unreadable keys…). */
  readonly startError: new (
    ...args: never[]
  ) => Error;
  /** What a second signal gives up on, e.g. "draining". */
  readonly abandons: string;
}

export async function runServiceMain<C extends { log: { level: string } }>(
  options: ServiceMainOptions<C>,
): Promise<void> {
  const usage = `usage: ${commandFor(options.name, options.npmScript ?? options.name)} [--config <file.yaml>]`;
  const fail = (message: string, code: number): never => {
    process.stderr.write(`voice-edge ${options.name}: ${message}\n`);
    process.exit(code);
  };
  let file: string | undefined;
  try {
    const { values } = parseArgs({
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    file = values.config;
  } catch (error) {
    fail(`${(error as Error).message}\n${usage}`, 2);
  }

  let config: C;
  try {
    config = options.load(file);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message, 2);
    throw error;
  }

  const logger = pino({ name: options.name, level: config.log.level });
  let service: RunningService;
  try {
    service = await options.start(config, logger);
  } catch (error) {
    if (error instanceof options.startError) fail(error.message, 1);
    throw error;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) fail(`second ${signal}: exiting without ${options.abandons}`, 1);
    logger.info({ signal }, 'shutting down');
    void service.shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const cause = await service.stopped;
  process.exit(cause instanceof Error ? 1 : 0);
}
