// The operator's HTTP face: /healthz (the process serves), /readyz (its caches are synced and it
// either leads or stands by ready to take over), /metrics.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { createHttpFace } from '../runtime/http-face.ts';

export interface OperatorHttpOptions {
  readonly registry: Registry;
  /** Undefined when ready; otherwise why not. */
  readonly notReady: () => string | undefined;
}

export function createOperatorHttp(options: OperatorHttpOptions): FastifyInstance {
  return createHttpFace({
    registry: options.registry,
    notReady: () => {
      const why = options.notReady();
      return why === undefined ? undefined : { status: 'not ready', reason: why };
    },
  });
}
