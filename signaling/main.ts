// `npm run signaling -- --config signaling.yaml`: the signaling process.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, loadSignalingConfig, type SignalingConfig } from './config.ts';
import { SignalingStartError, startSignaling } from './signaling.ts';

const usage = 'usage: npm run signaling -- --config <file.yaml>';

function fail(message: string, code: number): never {
  process.stderr.write(`voice-edge signaling: ${message}\n`);
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

let config: SignalingConfig;
try {
  config = loadSignalingConfig(configFile);
} catch (error) {
  if (error instanceof ConfigError) fail(error.message, 2);
  throw error;
}

const logger = pino({ name: 'signaling', level: config.log.level });
try {
  const signaling = await startSignaling(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) fail(`second ${signal}: exiting without finishing requests in flight`, 1);
    logger.info({ signal }, 'shutting down');
    void signaling.shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await signaling.stopped;
  process.exit(0);
} catch (error) {
  if (error instanceof SignalingStartError) fail(error.message, 1);
  throw error;
}
