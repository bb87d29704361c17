// The gate in front of the transceiver's internal API (docs/transceiver-api.md#authentication):
// every route but the kubelet's and Prometheus's read-only ones takes a bearer token from
// `api.tokens`, and a request a web page could make on its own never gets through. A browser can
// send a cross-origin "simple" request (GET/POST, text/plain or form body, no custom header) to any
// address it can reach, including a pod IP from a developer's laptop; it cannot add an
// Authorization header without a CORS preflight, and this API answers no preflight (no
// Access-Control-* header is ever sent). Bodies must be JSON, so a form or text/plain body is
// refused too even if a token were somehow attached.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { createAuthenticator } from '../protocol/bearer-auth.ts';
import { sendProblem } from './api-problem.ts';

/** Read-only routes for probes and scrapes: no token (kubelet and Prometheus carry none). */
const OPEN_ROUTES = new Set(['GET /healthz', 'GET /metrics', 'HEAD /healthz', 'HEAD /metrics']);

/** Routes whose body is required: a request without a JSON one is refused before it is read. */
const JSON_BODY_ROUTES = new Set(['POST /sessions', 'PATCH /sessions/:id']);

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export type RefusalReason = 'missing-token' | 'invalid-token' | 'media-type';

export interface ApiAuthOptions {
  /** Every one is accepted (rotation: add the new one, roll, switch the senders, remove the old). */
  readonly tokens: readonly string[];
  /** The transceiver's metrics registry: the refusal counter is added to it. */
  readonly registry: Registry;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

/** The media type without parameters, lower-cased; undefined when absent. */
function mediaType(request: FastifyRequest): string | undefined {
  return request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
}

/** Adds the gate as the first onRequest hook: call before any route is registered. */
export function guardApi(api: FastifyInstance, options: ApiAuthOptions): void {
  // The schema requires a token; an empty list here is a programming error, not "auth off".
  const authenticate = createAuthenticator(options.tokens);
  if (authenticate === undefined) throw new Error('the transceiver API needs at least one token');
  const refused = new Counter({
    name: 'voice_edge_transceiver_api_refused_total',
    help: 'Internal API requests refused before reaching a route, by reason (missing-token, invalid-token, media-type)',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  for (const reason of ['missing-token', 'invalid-token', 'media-type'] satisfies RefusalReason[])
    refused.inc({ reason }, 0);

  api.addHook('onRequest', async (request, reply) => {
    // The matched route's pattern (undefined when nothing matched: that needs a token too, so an
    // unauthenticated caller cannot map the API, and an OPTIONS preflight gets a bare 401).
    const route = `${request.method} ${request.routeOptions.url ?? '*'}`;
    if (OPEN_ROUTES.has(route)) return;
    const result = authenticate(request.headers.authorization);
    if (result !== 'ok') {
      refused.inc({ reason: result === 'missing' ? 'missing-token' : 'invalid-token' });
      reply.header(
        'www-authenticate',
        result === 'missing'
          ? 'Bearer realm="voice-edge-transceiver"'
          : 'Bearer realm="voice-edge-transceiver", error="invalid_token"',
      );
      return sendProblem(
        reply,
        401,
        'unauthorized',
        result === 'missing' ? 'send Authorization: Bearer <token>' : 'the bearer token is not valid',
      );
    }
    if (!STATE_CHANGING.has(request.method)) return;
    const type = mediaType(request);
    const needsBody = JSON_BODY_ROUTES.has(route);
    if ((needsBody || hasBody(request) || type !== undefined) && type !== 'application/json') {
      refused.inc({ reason: 'media-type' });
      return sendProblem(
        reply,
        415,
        'unsupported-media-type',
        needsBody
          ? `${request.method} takes an application/json body, not ${type ?? 'none'}`
          : `${request.method} takes no body, or an application/json one`,
      );
    }
  });
}
