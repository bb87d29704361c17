// Every error signaling answers is application/problem+json (RFC 9457) with a stable `code`.
import type { FastifyReply } from 'fastify';

export const PROBLEMS = {
  'bad-request': { status: 400, title: 'Bad request' },
  'bad-sdp': { status: 400, title: 'The SDP was refused' },
  'offer-too-complex': { status: 400, title: 'The offer is past a shape limit' },
  unauthorized: { status: 401, title: 'A valid bearer token is required' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'request-timeout': { status: 408, title: 'Request timeout' },
  'too-large': { status: 413, title: 'The body is too large' },
  'uri-too-long': { status: 414, title: 'URI too long' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'ice-restart-unsupported': { status: 422, title: 'ICE restart by SDP fragment is not supported' },
  'rate-limited': { status: 429, title: 'Too many offers from this client' },
  'too-many-sessions': { status: 429, title: 'Too many live sessions for this client' },
  'headers-too-large': { status: 431, title: 'Request header fields too large' },
  'internal-error': { status: 500, title: 'Internal error' },
  'transceiver-error': { status: 502, title: 'The media server failed' },
  'no-capacity': { status: 503, title: 'No capacity' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ProblemCode;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** `type` is a URN, not a URL: stable and never dereferenced; docs/whip.md lists every code. */
export function problem(code: ProblemCode, detail: string): Problem {
  const { status, title } = PROBLEMS[code];
  return { type: `urn:voice-edge:problem:${code}`, title, status, detail, code };
}

export function sendProblem(reply: FastifyReply, code: ProblemCode, detail: string): FastifyReply {
  const body = problem(code, detail);
  // A Buffer, so Fastify sends the media type as set (it appends a charset to JSON strings).
  return reply
    .code(body.status)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .send(Buffer.from(JSON.stringify(body), 'utf8'));
}
