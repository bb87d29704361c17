// `npm run transceiver -- --config transceiver.yaml`: the transceiver process.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError } from '../config/env-overrides.ts';
import { loadTransceiverConfig, type TransceiverConfig } from './config.ts';
import { startTransceiver, TransceiverStartError } from './service.ts';

const usage = 'usage: npm run transceiver -- --config <file.yaml>';

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge transceiver: ${message}\n`);
  process.exit(code);
}

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
if (file === undefined) fail(`--config is required\n${usage}`, 2);

let config: TransceiverConfig;
try {
  config = loadTransceiverConfig(file);
} catch (error) {
  if (error instanceof ConfigError) fail(error.message, 2);
  throw error;
}

const logger = pino({ name: 'transceiver', level: config.log.level });
try {
  const service = await startTransceiver(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) fail(`second ${signal}: exiting without waiting for calls`, 1);
    logger.info({ signal, graceMs: config.shutdown.graceMs }, 'shutting down: draining calls');
    service.shutdown().then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
} catch (error) {
  if (error instanceof TransceiverStartError) fail(error.message, 1);
  throw error;
}
