// `voice-edge operator` (or `node operator/main.ts [--config operator.yaml]`): the operator process.
import { runServiceMain } from '../config/service-main.ts';
import { loadOperatorConfig } from './config.ts';
import { OperatorStartError, startOperator } from './operator.ts';

await runServiceMain({
  name: 'operator',
  load: (file) => loadOperatorConfig(file),
  start: (config, logger) => startOperator(config, logger),
  startError: OperatorStartError,
  abandons: 'releasing the leader Lease',
});
