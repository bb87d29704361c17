// Entry point of a relay worker thread: builds a RelayWorker from workerData and follows the main
// thread's messages (routing table, keys, drain, stop).
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import type { RelayConfig } from './config.ts';
import { RelayWorker } from './worker.ts';

export interface WorkerInit {
  readonly index: number;
  readonly config: RelayConfig;
  readonly counters: Float64Array;
  readonly routingTable: unknown;
  readonly keyring: unknown;
}

export type ToWorker =
  | { type: 'routing-table'; document: unknown }
  | { type: 'keyring'; document: unknown }
  | { type: 'drain' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; message: string; code: string | undefined }
  | { type: 'stopped' };

const port = parentPort!;
const init = workerData as WorkerInit;
const logger = pino({ name: 'relay', level: init.config.log.level }).child({ worker: init.index });
const post = (message: FromWorker) => port.postMessage(message);

let worker: RelayWorker;
try {
  worker = new RelayWorker({ ...init, logger });
  await worker.start();
} catch (error) {
  const { message, code } = error as NodeJS.ErrnoException;
  post({ type: 'start-failed', message, code });
  process.exit(1);
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'routing-table':
      worker.applyRoutingTable(message.document);
      break;
    case 'keyring':
      worker.applyKeyring(message.document);
      break;
    case 'drain':
      worker.startDraining();
      break;
    case 'stop':
      worker.stop().then(
        () => {
          post({ type: 'stopped' });
          port.close();
        },
        (error: Error) => {
          logger.error({ err: error.message }, 'worker stop failed');
          post({ type: 'stopped' });
          port.close();
        },
      );
      break;
  }
});
post({ type: 'ready' });
