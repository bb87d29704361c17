// `npm run relay -- --config relay.yaml`: the relay process.
import { runServiceMain } from '../config/service-main.ts';
import { loadRelayConfig } from './config.ts';
import { RelayStartError, startRelay } from './relay.ts';

await runServiceMain({
  name: 'relay',
  load: (file) => loadRelayConfig(file),
  start: startRelay,
  startError: RelayStartError,
  abandons: 'draining',
});
