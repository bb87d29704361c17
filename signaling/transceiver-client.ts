// Calls to a transceiver's internal HTTP API (docs/transceiver-api.md), with its bearer token. Every
// call has a timeout and ends in one of four outcomes the caller can switch on; nothing here throws
// for a network problem.
import { z } from 'zod';
import { type TransceiverStatus, TransceiverStatusSchema } from '../protocol/transceiver-status.ts';

const CreatedSchema = z.object({
  sessionId: z.string().min(1).max(256),
  answer: z.string().min(1),
  ufrag: z.string().min(1),
});
export type CreatedSession = z.infer<typeof CreatedSchema>;

const UpdatedSchema = z.object({ answer: z.string().min(1), ufrag: z.string().min(1) });
export type UpdatedSession = z.infer<typeof UpdatedSchema>;

const SessionStateSchema = z.object({ sessionId: z.string().min(1), connected: z.boolean() });
export type SessionState = z.infer<typeof SessionStateSchema>;

const ProblemSchema = z.object({
  code: z.string().optional(),
  detail: z.string().optional(),
  title: z.string().optional(),
});

export type TransceiverReply<T> =
  /** The documented success answer, validated. */
  | { readonly kind: 'ok'; readonly value: T }
  /** A documented error: problem+json's `code` and `detail` when the body carried them. */
  | {
      readonly kind: 'problem';
      readonly status: number;
      readonly code: string | undefined;
      readonly detail: string | undefined;
    }
  /** Connection refused, reset, timed out: the request may or may not have arrived. */
  | { readonly kind: 'unreachable'; readonly error: string }
  /** An answer outside the contract (wrong status for success, body that does not match). */
  | { readonly kind: 'invalid'; readonly status: number; readonly error: string };

export interface SessionOffer {
  readonly offer: string;
  readonly relays?: readonly string[];
  /** ICE-TCP relay addresses advertised beside `relays` (only with them). */
  readonly tcpRelays?: readonly string[];
  readonly metadata?: Record<string, unknown>;
}

export interface TransceiverClientOptions {
  /** For POST/PATCH/DELETE /sessions (werift negotiates and the backend WebSocket opens meanwhile). */
  readonly requestTimeoutMs: number;
  /** For GET /status: short, a slow transceiver is treated as unavailable. */
  readonly statusTimeoutMs: number;
  /** Sent as `Authorization: Bearer <token>` on every call (one of the transceivers' api.tokens). */
  readonly token?: string | undefined;
}

/** `base` + relative `path`, keeping any path prefix of the base (`http://t:8080/api` + `status`). */
export function apiUrl(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`);
}

function describeError(error: unknown, timeoutMs: number): string {
  const err = error as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const cause = err.cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return err.message;
}

export class TransceiverClient {
  readonly #options: TransceiverClientOptions;

  constructor(options: TransceiverClientOptions) {
    this.#options = options;
  }

  status(api: string): Promise<TransceiverReply<TransceiverStatus>> {
    return this.#call(apiUrl(api, 'status'), { method: 'GET' }, this.#options.statusTimeoutMs, 200, (body) =>
      TransceiverStatusSchema.safeParse(body),
    );
  }

  createSession(api: string, offer: SessionOffer): Promise<TransceiverReply<CreatedSession>> {
    return this.#call(
      apiUrl(api, 'sessions'),
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(offer) },
      this.#options.requestTimeoutMs,
      201,
      (body) => CreatedSchema.safeParse(body),
    );
  }

  updateSession(api: string, sessionId: string, offer: string): Promise<TransceiverReply<UpdatedSession>> {
    return this.#call(
      apiUrl(api, `sessions/${encodeURIComponent(sessionId)}`),
      { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offer }) },
      this.#options.requestTimeoutMs,
      200,
      (body) => UpdatedSchema.safeParse(body),
    );
  }

  deleteSession(api: string, sessionId: string): Promise<TransceiverReply<undefined>> {
    return this.#call(
      apiUrl(api, `sessions/${encodeURIComponent(sessionId)}`),
      { method: 'DELETE' },
      this.#options.requestTimeoutMs,
      204,
      () => ({ success: true, data: undefined }),
    );
  }

  /** Whether the session still lives (404 problem when not); short like a status poll. */
  getSession(api: string, sessionId: string): Promise<TransceiverReply<SessionState>> {
    return this.#call(
      apiUrl(api, `sessions/${encodeURIComponent(sessionId)}`),
      { method: 'GET' },
      this.#options.statusTimeoutMs,
      200,
      (body) => SessionStateSchema.safeParse(body),
    );
  }

  async #call<T>(
    url: URL,
    init: RequestInit,
    timeoutMs: number,
    expected: number,
    validate: (body: unknown) => { success: true; data: T } | { success: false; error?: z.ZodError },
  ): Promise<TransceiverReply<T>> {
    let response: Response;
    let text: string;
    try {
      const headers = new Headers(init.headers);
      if (this.#options.token !== undefined) headers.set('authorization', `Bearer ${this.#options.token}`);
      response = await fetch(url, {
        ...init,
        headers,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      text = await response.text();
    } catch (error) {
      return { kind: 'unreachable', error: describeError(error, timeoutMs) };
    }
    let body: unknown;
    if (text !== '' && /json/i.test(response.headers.get('content-type') ?? '')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (response.status === expected) {
      const result = validate(body);
      if (result.success) return { kind: 'ok', value: result.data };
      const issues = result.error
        ? result.error.issues
            .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
            .join('; ')
        : 'unexpected body';
      return { kind: 'invalid', status: response.status, error: `answer does not match the API: ${issues}` };
    }
    if (response.status >= 400) {
      const problem = ProblemSchema.safeParse(body);
      return {
        kind: 'problem',
        status: response.status,
        code: problem.success ? problem.data.code : undefined,
        detail: problem.success ? (problem.data.detail ?? problem.data.title) : undefined,
      };
    }
    return { kind: 'invalid', status: response.status, error: `unexpected status ${response.status}` };
  }
}

/** A failed reply in words, for logs. */
export function transceiverProblem(reply: TransceiverReply<unknown>): string {
  switch (reply.kind) {
    case 'ok':
      return 'ok';
    case 'unreachable':
      return `unreachable: ${reply.error}`;
    case 'invalid':
      return `answer outside the API (status ${reply.status}): ${reply.error}`;
    case 'problem':
      return `${reply.status}${reply.code ? ` ${reply.code}` : ''}${reply.detail ? `: ${reply.detail}` : ''}`;
  }
}
