// CONTRACT DOUBLE of docs/transceiver-api.md — not a transceiver, and no media.
//
// The real transceiver (transceiver/) is being written in parallel. Until the end-to-end tests
// (test/e2e/) run signaling against it, signaling's tests talk to this small HTTP server, which
// follows the documented contract: POST/PATCH/DELETE /sessions, POST /drain, GET /status,
// GET /healthz; JSON bodies; problem+json errors with the documented codes (bad-sdp, bad-request,
// at-capacity with Retry-After, draining, not-found). Its SDP "answer" is a placeholder, not a
// negotiated answer. When the contract in docs/transceiver-api.md changes, change this file with it;
// when test/e2e covers these paths with the real transceiver, delete this double.
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';

export interface DoubleSession {
  readonly sessionId: string;
  offer: string;
  readonly relays: readonly string[] | undefined;
  readonly tcpRelays: readonly string[] | undefined;
  readonly metadata: Record<string, unknown> | undefined;
  ufrag: string;
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
}

export interface TransceiverDoubleOptions {
  readonly id: number;
  readonly clusterId: number;
  readonly capacity: number;
  readonly state?: 'active' | 'draining';
  /** When set, every route but /healthz answers 401 without `Authorization: Bearer <token>`. */
  readonly token?: string;
}

const CreateBody = z.strictObject({
  offer: z.string(),
  relays: z.array(z.string()).optional(),
  tcpRelays: z.array(z.string()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
const UpdateBody = z.strictObject({ offer: z.string() });

function problem(reply: FastifyReply, status: number, code: string, detail: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title: code, status, detail, code }));
}

/** A ufrag shaped like the real ones (40 characters of [a-z2-7]); its content means nothing here. */
function fakeUfrag(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return [...randomBytes(40)].map((byte) => alphabet[byte % 32]).join('');
}

function fakeAnswer(ufrag: string, relays: readonly string[] | undefined): string {
  const candidates = (relays ?? ['192.0.2.1:3478']).map((relay, index) => {
    const colon = relay.lastIndexOf(':');
    const host = relay.slice(0, colon).replace(/^\[|\]$/g, '');
    return `a=candidate:${index + 1} 1 udp 2130706431 ${host} ${relay.slice(colon + 1)} typ host`;
  });
  return [
    'v=0',
    'o=- 1 1 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=ice-lite',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    'a=ice-pwd:contractdoublecontractdouble',
    'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
    'a=setup:passive',
    'a=mid:0',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    ...candidates,
    'a=end-of-candidates',
    '',
  ].join('\r\n');
}

export class TransceiverDouble {
  readonly id: number;
  clusterId: number;
  capacity: number;
  state: 'active' | 'draining';
  readonly sessions = new Map<string, DoubleSession>();
  readonly requests: RecordedRequest[] = [];
  /** Sessions the status reports on top of the real ones (to fake load). */
  extraSessions = 0;
  /** Delay before answering POST /sessions (to keep a request in flight). */
  createDelayMs = 0;
  /** Delay before answering GET /status (to make a poll time out). */
  statusDelayMs = 0;
  /** When set, GET /status reports this transceiver ID instead (a misrouted API URL). */
  reportedId: number | undefined;
  #failNext: { status: number; code: string; detail: string } | undefined;
  readonly #app: FastifyInstance;
  readonly #token: string | undefined;
  /** Requests refused for a missing or wrong token. */
  unauthorized = 0;
  #api = '';

  private constructor(options: TransceiverDoubleOptions) {
    this.id = options.id;
    this.clusterId = options.clusterId;
    this.capacity = options.capacity;
    this.state = options.state ?? 'active';
    this.#app = Fastify({ logger: false });
    this.#token = options.token;
    this.#routes();
  }

  static async start(options: TransceiverDoubleOptions): Promise<TransceiverDouble> {
    const double = new TransceiverDouble(options);
    const address = await double.#app.listen({ host: '127.0.0.1', port: 0 });
    double.#api = address;
    return double;
  }

  /** The internal API base URL, as the routing table's `api` field carries it. */
  get api(): string {
    return this.#api;
  }

  /** Back to a fresh transceiver with the given capacity: no sessions, no knobs set, no history. */
  reset(capacity = this.capacity): void {
    this.sessions.clear();
    this.requests.length = 0;
    this.capacity = capacity;
    this.state = 'active';
    this.extraSessions = 0;
    this.unauthorized = 0;
    this.createDelayMs = 0;
    this.statusDelayMs = 0;
    this.reportedId = undefined;
    this.#failNext = undefined;
  }

  /** The next POST /sessions answers this problem instead of creating a session. */
  failNextCreate(status: number, code: string, detail = `double: ${code}`): void {
    this.#failNext = { status, code, detail };
  }

  #routes(): void {
    const app = this.#app;
    app.addHook('onRequest', async (request, reply) => {
      if (this.#token === undefined || request.url === '/healthz') return;
      if (request.headers.authorization === `Bearer ${this.#token}`) return;
      this.unauthorized++;
      reply.header('www-authenticate', 'Bearer');
      return problem(reply, 401, 'unauthorized', 'send Authorization: Bearer <token>');
    });
    app.addHook('preHandler', async (request) => {
      this.requests.push({ method: request.method, url: request.url, body: request.body });
    });
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/status', async () => {
      if (this.statusDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.statusDelayMs));
      return {
        transceiverId: this.reportedId ?? this.id,
        clusterId: this.clusterId,
        state: this.state,
        sessions: this.sessions.size + this.extraSessions,
        capacity: this.capacity,
      };
    });
    app.post('/drain', async () => {
      this.state = 'draining';
      return { state: 'draining' };
    });
    app.post('/sessions', async (request, reply) => {
      if (this.createDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.createDelayMs));
      const failure = this.#failNext;
      if (failure) {
        this.#failNext = undefined;
        if (failure.status === 503) reply.header('retry-after', '1');
        return problem(reply, failure.status, failure.code, failure.detail);
      }
      const body = CreateBody.safeParse(request.body);
      if (!body.success) return problem(reply, 400, 'bad-request', body.error.message);
      if (!/^m=audio /m.test(body.data.offer)) return problem(reply, 400, 'bad-sdp', 'no audio');
      if (this.state === 'draining') return problem(reply, 503, 'draining', 'draining');
      if (this.sessions.size + this.extraSessions >= this.capacity) {
        reply.header('retry-after', '1');
        return problem(reply, 503, 'at-capacity', `${this.capacity} sessions`);
      }
      const session: DoubleSession = {
        sessionId: randomBytes(12).toString('base64url'),
        offer: body.data.offer,
        relays: body.data.relays,
        tcpRelays: body.data.tcpRelays,
        metadata: body.data.metadata,
        ufrag: fakeUfrag(),
      };
      this.sessions.set(session.sessionId, session);
      return reply.code(201).send({
        sessionId: session.sessionId,
        answer: fakeAnswer(session.ufrag, session.relays),
        ufrag: session.ufrag,
      });
    });
    app.patch<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
      const session = this.sessions.get(request.params.id);
      if (session === undefined) return problem(reply, 404, 'not-found', 'no such session');
      const body = UpdateBody.safeParse(request.body);
      if (!body.success) return problem(reply, 400, 'bad-request', body.error.message);
      session.offer = body.data.offer;
      session.ufrag = fakeUfrag();
      return { answer: fakeAnswer(session.ufrag, session.relays), ufrag: session.ufrag };
    });
    app.get<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
      if (!this.sessions.has(request.params.id)) return problem(reply, 404, 'not-found', 'no such session');
      return { sessionId: request.params.id, connected: false };
    });
    app.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
      if (!this.sessions.delete(request.params.id))
        return problem(reply, 404, 'not-found', 'no such session');
      return reply.code(204).send();
    });
  }

  async close(): Promise<void> {
    await this.#app.close();
  }
}
