// The HTTP face every service shows the kubelet and Prometheus: /healthz (the process serves),
// /readyz (it should get traffic; only services with a readiness of their own) and /metrics (the
// registry in the text format). One answer shape everywhere: 200 with `{status: 'ok'}` or
// `{status: 'ready'}`, else 503 with the body the service gives for why not.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** The 503 body of a failing probe; undefined when the probe passes. */
export type ProbeFailure = () => Record<string, unknown> | undefined;

export interface HttpFaceOptions {
  readonly registry: Registry;
  /** /healthz's failure; absent: the process answering is healthy enough. */
  readonly notHealthy?: ProbeFailure;
  /** /readyz's failure; absent: no /readyz route (the service has no readiness apart from health). */
  readonly notReady?: ProbeFailure;
}

/** Adds /healthz, /readyz (with `notReady`) and /metrics to `app`, beside its other routes. */
export function serveHttpFace(app: FastifyInstance, options: HttpFaceOptions): void {
  const { registry, notHealthy, notReady } = options;
  app.get('/healthz', async (_request, reply) => {
    const failure = notHealthy?.();
    return failure === undefined ? { status: 'ok' } : reply.code(503).send(failure);
  });
  if (notReady !== undefined) {
    app.get('/readyz', async (_request, reply) => {
      const failure = notReady();
      return failure === undefined ? { status: 'ready' } : reply.code(503).send(failure);
    });
  }
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}

/** A server with the face alone (relay, signaling and operator serve it on a port of its own). */
export function createHttpFace(options: HttpFaceOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  serveHttpFace(app, options);
  return app;
}
