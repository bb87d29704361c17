// `npm run relay -- --config relay.yaml`: the relay process.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, loadRelayConfig } from './config.ts';
import { RelayStartError, startRelay } from './relay.ts';

const usage = 'usage: npm run relay -- --config <file.yaml>';

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge relay: ${message}\n`);
  process.exit(code);
}

let configFile: string | undefined;
try {
  const { values } = parseArgs({
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  configFile = values.config;
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`, 2);
}
if (configFile === undefined) fail(`--config is required\n${usage}`, 2);

let config: ReturnType<typeof loadRelayConfig>;
try {
  config = loadRelayConfig(configFile);
} catch (error) {
  if (error instanceof ConfigError) fail(error.message, 2);
  throw error;
}

const logger = pino({ name: 'relay', level: config.log.level });
try {
  const relay = await startRelay(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) fail(`second ${signal}: exiting without draining`, 1);
    logger.info({ signal }, 'shutting down');
    void relay.shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const cause = await relay.stopped;
  process.exit(cause === undefined ? 0 : 1);
} catch (error) {
  if (error instanceof RelayStartError) fail(error.message, 1);
  throw error;
}
