// The operator's HTTP face: /healthz (the process serves), /readyz (its caches are synced and it
// either leads or stands by ready to take over), /metrics.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface OperatorHttpOptions {
  readonly registry: Registry;
  /** Undefined when ready; otherwise why not. */
  readonly notReady: () => string | undefined;
}

export function createOperatorHttp(options: OperatorHttpOptions): FastifyInstance {
  const http = Fastify({ logger: false });
  http.get('/healthz', async () => ({ status: 'ok' }));
  http.get('/readyz', async (_request, reply) => {
    const why = options.notReady();
    if (why === undefined) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason: why });
  });
  http.get('/metrics', async (_request, reply) => {
    reply.header('content-type', options.registry.contentType);
    return options.registry.metrics();
  });
  return http;
}
