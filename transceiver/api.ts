// The transceiver's internal HTTP API (docs/transceiver-api.md): bearer-token authenticated
// (api-auth.ts), JSON bodies checked by schema, errors as problem+json with stable codes.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { formatIssues, TransportAddressSchema } from '../protocol/schema.ts';
import { checkOffer } from '../protocol/sdp-check.ts';
import { serveHttpFace } from '../runtime/http-face.ts';
import { type ApiAuthOptions, guardApi } from './api-auth.ts';
import { sendProblem } from './api-problem.ts';
import type { TransceiverMetrics } from './metrics.ts';
import { type Transceiver, TransceiverError } from './transceiver.ts';

const MAX_BODY_BYTES = 128 * 1024;

const CreateSessionBody = z.strictObject({
  offer: z.string().min(1),
  relays: z.array(TransportAddressSchema).max(8).optional(),
  /** ICE-TCP relay addresses advertised beside `relays`; with `relays` only (they replace the configured set together). */
  tcpRelays: z.array(TransportAddressSchema).max(8).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

const ReofferBody = z.strictObject({ offer: z.string().min(1) });

function badRequest(reply: FastifyReply, error: z.ZodError) {
  return sendProblem(reply, 400, 'bad-request', formatIssues(error));
}

export function createTransceiverApi(
  transceiver: Transceiver,
  metrics: TransceiverMetrics,
  auth: Pick<ApiAuthOptions, 'tokens'>,
): FastifyInstance {
  const api = Fastify({ logger: false, bodyLimit: MAX_BODY_BYTES });
  // First, before any route: a bearer token on everything but /healthz and /metrics.
  guardApi(api, { tokens: auth.tokens, registry: metrics.registry });

  api.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof TransceiverError)
      return sendProblem(reply, error.status, error.code, error.message, error.retryAfterS);
    const status = error.statusCode ?? 500;
    return sendProblem(reply, status, status < 500 ? 'bad-request' : 'internal', error.message);
  });

  api.post('/sessions', async (request, reply) => {
    const body = CreateSessionBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, body.error);
    const check = checkOffer(body.data.offer);
    if (!check.ok) return sendProblem(reply, 400, check.problem, check.detail);
    const created = await transceiver.createCall(body.data);
    return reply.code(201).send(created);
  });

  api.patch<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const body = ReofferBody.safeParse(request.body);
    if (!body.success) return badRequest(reply, body.error);
    const check = checkOffer(body.data.offer);
    if (!check.ok) return sendProblem(reply, 400, check.problem, check.detail);
    return transceiver.reoffer(request.params.id, body.data.offer);
  });

  // Whether a session is still here: signaling asks before it refuses a client at its session cap.
  api.get<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const call = transceiver.calls.get(request.params.id);
    if (call === undefined) return sendProblem(reply, 404, 'not-found', `no session ${request.params.id}`);
    return { sessionId: call.id, connected: call.connected };
  });

  api.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    if (!transceiver.endCall(request.params.id))
      return sendProblem(reply, 404, 'not-found', `no session ${request.params.id}`);
    return reply.code(204).send();
  });

  api.post('/drain', async () => {
    transceiver.drain();
    return { state: 'draining' };
  });

  api.get('/status', async () => transceiver.status());
  serveHttpFace(api, { registry: metrics.registry });
  return api;
}
