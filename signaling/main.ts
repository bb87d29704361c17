// `npm run signaling -- --config signaling.yaml`: the signaling process.
import { runServiceMain } from '../config/service-main.ts';
import { loadSignalingConfig } from './config.ts';
import { SignalingStartError, startSignaling } from './signaling.ts';

await runServiceMain({
  name: 'signaling',
  load: (file) => loadSignalingConfig(file),
  start: (config, logger) => startSignaling(config, logger),
  startError: SignalingStartError,
  abandons: 'finishing requests in flight',
});
