// The internal API's errors: problem+json (RFC 9457) with a stable code, the same shape signaling's
// answers have (signaling/problem.ts).
import type { FastifyReply } from 'fastify';

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  retryAfterS?: number,
) {
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS));
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `urn:voice-edge:problem:${code}`, title: code, status, detail, code });
}
