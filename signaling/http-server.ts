// The public WHIP server's connection limits and the answers Node writes before Fastify sees a
// request. Fastify's `requestTimeout: 0` default leaves Node's headersTimeout at 0 too, so a client
// trickling header bytes held its connection forever; and errors the HTTP parser raises (headers too
// large: 431) or the router raises (a path parameter too long: 414, a malformed URL: 400) were
// answered with Fastify's own JSON, not problem+json.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyHttpOptions } from 'fastify';
import { PROBLEM_CONTENT_TYPE, type ProblemCode, problem, sendProblem } from './problem.ts';

export interface PublicServerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

/** Node checks the header and request timeouts this often (30 s by default: too coarse). */
function checkingIntervalMs(limits: PublicServerLimits): number {
  return Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)));
}

/** Fastify options that build the server with these limits and answer parser errors as problems. */
export function publicServerOptions(limits: PublicServerLimits): Partial<FastifyHttpOptions<Server>> {
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    serverFactory: (handler) => {
      const server = createServer(
        {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: checkingIntervalMs(limits),
        },
        handler,
      );
      // Past this, Node closes new connections as they are accepted.
      server.maxConnections = limits.maxConnections;
      return server;
    },
    clientErrorHandler: answerClientError,
    // The router's errors (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH) as problems too.
    frameworkErrors: (error, _request, reply) => {
      const code = (error as { code?: string }).code;
      if (code === 'FST_ERR_MAX_PARAM_LENGTH')
        return sendProblem(reply, 'uri-too-long', 'the path is longer than a session URL can be');
      return sendProblem(reply, 'bad-request', error.message);
    },
  };
}

/**
 * Node's `clientError`: the parser failed or a timeout fired before any request object existed.
 * Writes a problem on the raw socket (no CORS: no request, no Origin) and closes it.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, detail]: [ProblemCode, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers-too-large', 'the request line and headers are larger than the server accepts']
      : error.code === 'HPE_URI_TOO_LONG'
        ? ['uri-too-long', 'the request URI is too long']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['request-timeout', 'the request did not arrive in time']
          : ['bad-request', 'the request is not valid HTTP/1.1'];
  const answer = problem(code, detail);
  const body = JSON.stringify(answer);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${answer.status} ${answer.title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
