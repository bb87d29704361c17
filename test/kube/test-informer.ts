// The caches of the test kubelet, its mini kube-proxy and the tests that watch objects are the
// project's informer (kube/informer.ts): one list+watch for product and test alike. This
// holds what they share: retries from 0.2 s doubling to 5 s, watches of 60 to 120 s, and the
// informer's warnings (failed list/watch, a handler that threw) as one line through a plain log.
import pino, { type Logger } from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import { Informer, type InformerHandlers, type KubeObject } from '../../kube/informer.ts';

export interface TestInformerOptions {
  /** For log lines: `pods`, `services`… */
  readonly name: string;
  readonly path: string;
  readonly fieldSelector?: string;
  /** Where failures go; none: silent. */
  readonly log?: (message: string) => void;
  readonly onRestart?: (cause: 'error' | 'expired') => void;
}

/** An informer with `handlers`, not yet started (`start()`, then `await whenSynced()`). */
export function testInformer<T extends KubeObject>(
  client: KubeClient,
  options: TestInformerOptions,
  handlers: InformerHandlers<T>,
): Informer<T> {
  const informer = new Informer<T>(client, {
    name: options.name,
    path: options.path,
    fieldSelector: options.fieldSelector,
    backoff: { initialMs: 200, maxMs: 5_000 },
    watchTimeoutSeconds: 60,
    logger: lineLogger(options.log),
    ...(options.onRestart ? { onRestart: options.onRestart } : {}),
  });
  informer.addHandlers(handlers);
  return informer;
}

function lineLogger(log: ((message: string) => void) | undefined): Logger {
  if (!log) return pino({ level: 'silent' });
  return pino(
    { level: 'warn', base: undefined, timestamp: false },
    {
      write(line: string) {
        const entry = JSON.parse(line) as { informer?: string; msg?: string; err?: unknown };
        const err = entry.err as { message?: string } | string | undefined;
        log(`${entry.informer} watch: ${entry.msg}: ${typeof err === 'object' ? err.message : err}`);
      },
    },
  );
}
