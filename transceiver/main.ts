// `npm run transceiver -- --config transceiver.yaml`: the transceiver process.
import { runServiceMain } from '../config/service-main.ts';
import { loadTransceiverConfig } from './config.ts';
import { startTransceiver, TransceiverStartError } from './service.ts';

await runServiceMain({
  name: 'transceiver',
  load: (file) => loadTransceiverConfig(file),
  start: (config, logger) => startTransceiver(config, logger),
  startError: TransceiverStartError,
  abandons: 'waiting for calls',
});
