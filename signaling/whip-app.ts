// The public WHIP server (RFC 9725): POST an offer to /whip, get the answer and a session URL that
// names the transceiver; PATCH and DELETE that URL. Stateless: the routing table, the status cache
// and the session URL itself are all it needs. docs/whip.md describes the behaviour.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { formatTransportAddress } from '../protocol/address.ts';
import { createAuthenticator } from '../protocol/bearer-auth.ts';
import type { RoutingTable, TransceiverEntry } from '../protocol/routing-table.ts';
import { checkOffer, DEFAULT_OFFER_SHAPE_LIMITS, parseTrickleFragment } from '../protocol/sdp-check.ts';
import { ClientLimits, clientKey } from './client-limits.ts';
import type { SignalingConfig } from './config.ts';
import { DEFAULT_PER_CLIENT_LIMITS, DEFAULT_REGION_HEADER, HTTP_DEFAULTS } from './config.ts';
import { publicServerOptions } from './http-server.ts';
import type { SignalingMetrics } from './metrics.ts';
import {
  isOfferProblem,
  type PlacementCluster,
  type Placer,
  placeSession,
  type StatusBook,
  type TransceiverApi,
} from './placement.ts';
import { type ProblemCode, sendProblem } from './problem.ts';
import { callerRegion, type EdgeRelaySite } from './region.ts';
import { formatResourceId, parseResourceId, type ResourceId, sessionLocation } from './resource-id.ts';
import { transceiverProblem } from './transceiver-client.ts';

export const SDP = 'application/sdp';
export const SDPFRAG = 'application/trickle-ice-sdpfrag';
const ACCEPT_PATCH = `${SDPFRAG}, ${SDP}`;
const ALLOW_ENDPOINT = 'POST, OPTIONS';
const ALLOW_SESSION = 'PATCH, DELETE, OPTIONS';
const EXPOSE_HEADERS = 'Location, ETag, Link, Retry-After';
const ALLOW_HEADERS = 'Authorization, Content-Type, If-Match';
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/** The demo page's files (signaling/demo/), each at one fixed URL: nothing else is served from disk. */
const DEMO_FILES = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/demo/demo.js', file: 'demo.js', type: 'text/javascript; charset=utf-8' },
  { url: '/demo/demo.css', file: 'demo.css', type: 'text/css; charset=utf-8' },
] as const;
/**
 * The page loads its script and style from this origin and talks to this origin only
 * (`connect-src 'self'`: its WHIP requests cannot be pointed elsewhere). No inline script or style.
 */
export const DEMO_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "media-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
const DEMO_HEADERS = {
  'content-security-policy': DEMO_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'microphone=(self), camera=(), geolocation=()',
  'cross-origin-opener-policy': 'same-origin',
  // Read once at start: a new page needs a restart, and a browser always asks again.
  'cache-control': 'no-cache',
};

export interface WhipAppOptions {
  readonly config: Pick<SignalingConfig, 'auth' | 'cors' | 'relays' | 'placement' | 'limits' | 'demo'> &
    Partial<Pick<SignalingConfig, 'tcpRelays' | 'edgeRelays' | 'region' | 'http'>>;
  /** One cluster: the routing table in force and its transceivers' status (with `config.relays`). */
  readonly routingTable?: () => RoutingTable;
  readonly statuses?: StatusBook;
  /** Several clusters instead (session URLs then name the cluster). */
  readonly clusters?: readonly PlacementCluster[];
  readonly client: TransceiverApi;
  readonly metrics: SignalingMetrics;
  readonly logger: Logger;
  /** Tie-break among equally loaded transceivers (tests pass a fixed one). */
  readonly random?: () => number;
  /**
   * True once shutdown began: answers then carry `Connection: close`, so clients reconnect (through
   * the load balancer, to another replica) and no idle keep-alive connection holds the close up.
   */
  readonly shuttingDown?: () => boolean;
}

/** The clusters of the options: `clusters`, or the one cluster of `routingTable` and `config.relays`. */
function placementClusters(options: WhipAppOptions): readonly PlacementCluster[] {
  if (options.clusters !== undefined) return options.clusters;
  const { routingTable, statuses } = options;
  if (routingTable === undefined || statuses === undefined)
    throw new Error('buildWhipApp needs clusters, or routingTable and statuses');
  const relays = options.config.relays.map(formatTransportAddress);
  const tcpRelays = (options.config.tcpRelays ?? []).map(formatTransportAddress);
  return [
    {
      get clusterId() {
        return routingTable().clusterId;
      },
      region: undefined,
      relays,
      tcpRelays,
      routingTable,
      statuses,
    },
  ];
}

/** The media type of a request without parameters, lower-cased; undefined when absent. */
function mediaTypeOf(request: FastifyRequest): string | undefined {
  const header = request.headers['content-type'];
  if (header === undefined) return undefined;
  return header.split(';')[0]!.trim().toLowerCase();
}

/** A strong entity-tag for the ICE session: the server ufrag, when it is a valid etagc string. */
function etagOf(ufrag: string): string | undefined {
  return /^[\x21\x23-\x7e]{1,256}$/.test(ufrag) ? `"${ufrag}"` : undefined;
}

/** The bearer token of an Authorization header (already checked), for the per-client key. */
function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export function buildWhipApp(options: WhipAppOptions): FastifyInstance {
  const { config, client, metrics, logger } = options;
  const maxBytes = config.limits.maxOfferBytes;
  const authenticate = createAuthenticator(config.auth.tokens);
  const allowAnyOrigin = config.cors.allowOrigins.includes('*');
  const allowedOrigins = new Set(config.cors.allowOrigins);
  const clusters = placementClusters(options);
  const named = options.clusters !== undefined && options.clusters.length > 1;
  const edges: EdgeRelaySite[] = (config.edgeRelays ?? []).map((edge) => ({
    region: edge.region,
    relays: edge.relays.map(formatTransportAddress),
    tcpRelays: edge.tcpRelays.map(formatTransportAddress),
    clientCidrs: edge.clientCidrs,
    clusters: edge.clusters,
  }));
  const regionHeader = config.region?.header ?? DEFAULT_REGION_HEADER;
  const policy = { defaultRegion: config.region?.default };
  const nearest = config.region?.nearest ?? {};
  const receivedAt = new WeakMap<FastifyRequest, number>();
  const shape = config.limits.offer ?? DEFAULT_OFFER_SHAPE_LIMITS;
  const perClient = config.limits.perClient ?? DEFAULT_PER_CLIENT_LIMITS;
  const clientLimits = new ClientLimits(perClient);
  const http = config.http ?? { trustProxy: false, ...HTTP_DEFAULTS };

  const app = Fastify({
    logger: false,
    ...publicServerOptions(http),
    // Off by default: X-Forwarded-For is whatever the client wrote unless a proxy of ours set it.
    trustProxy: http.trustProxy,
    // A body over the limit is refused while it streams in (413), before any SDP is looked at.
    bodyLimit: maxBytes,
    // Keep serving requests that arrive on open connections while closing: they finish normally.
    return503OnClosing: false,
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: 1024 },
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([SDP, SDPFRAG], { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.addHook('onRequest', async (request) => {
    receivedAt.set(request, performance.now());
  });
  // CORS on every answer, errors included: a browser must be able to read a 401 or a 503.
  app.addHook('onSend', async (request, reply, payload) => {
    const origin = request.headers.origin;
    if (allowAnyOrigin) reply.header('access-control-allow-origin', '*');
    else {
      reply.header('vary', 'Origin');
      if (origin !== undefined && allowedOrigins.has(origin))
        reply.header('access-control-allow-origin', origin);
    }
    reply.header('access-control-expose-headers', EXPOSE_HEADERS);
    if (options.shuttingDown?.()) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.inc({
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: String(reply.statusCode),
    });
  });

  const requireToken = async (request: FastifyRequest, reply: FastifyReply) => {
    if (authenticate === undefined) return;
    const result = authenticate(request.headers.authorization);
    if (result === 'ok') return;
    reply.header(
      'www-authenticate',
      result === 'missing' ? 'Bearer realm="whip"' : 'Bearer realm="whip", error="invalid_token"',
    );
    return sendProblem(
      reply,
      'unauthorized',
      result === 'missing' ? 'send Authorization: Bearer <token>' : 'the bearer token is not valid',
    );
  };

  const unsupportedMediaType = (reply: FastifyReply, method: string, got: string | undefined) => {
    if (method !== 'POST' && method !== 'PATCH') {
      return sendProblem(reply, 'unsupported-media-type', `${method} takes no body`);
    }
    if (method === 'POST') reply.header('accept-post', SDP);
    else reply.header('accept-patch', ACCEPT_PATCH);
    const expected = method === 'POST' ? SDP : `${SDPFRAG} or ${SDP}`;
    return sendProblem(
      reply,
      'unsupported-media-type',
      `expected Content-Type: ${expected}${got === undefined ? ' (none was sent)' : `, got ${got}`}`,
    );
  };

  app.setErrorHandler(async (error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return unsupportedMediaType(reply, request.method, mediaTypeOf(request));
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, 'too-large', `the body is larger than ${maxBytes} bytes`);
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code: ProblemCode = status === 404 ? 'not-found' : 'bad-request';
      return sendProblem(reply, code, error.message);
    }
    logger.error({ err: error, requestId: request.id, url: request.url }, 'unexpected error');
    return sendProblem(reply, 'internal-error', `request ${request.id} failed; see the signaling logs`);
  });
  app.setNotFoundHandler(async (request, reply) =>
    sendProblem(reply, 'not-found', `no resource at ${request.method} ${request.url.split('?')[0]}`),
  );

  // Preflight: no authentication (browsers send no credentials on it).
  const preflight =
    (allow: string, extra: Record<string, string>) => async (_: FastifyRequest, reply: FastifyReply) =>
      reply
        .code(204)
        .headers({
          'access-control-allow-methods': allow,
          'access-control-allow-headers': ALLOW_HEADERS,
          'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
          allow,
          ...extra,
        })
        .send();
  const notAllowed = (allow: string) => async (request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(
      reply.header('allow', allow),
      'method-not-allowed',
      `${request.method} is not supported here; use ${allow}`,
    );

  app.options('/whip', preflight(ALLOW_ENDPOINT, { 'accept-post': SDP }));
  app.options('/whip/sessions/:id', preflight(ALLOW_SESSION, { 'accept-patch': ACCEPT_PATCH }));
  app.route({ method: ['GET', 'PUT', 'DELETE', 'PATCH'], url: '/whip', handler: notAllowed(ALLOW_ENDPOINT) });
  app.route({
    method: ['GET', 'PUT', 'POST'],
    url: '/whip/sessions/:id',
    handler: notAllowed(ALLOW_SESSION),
  });

  // The demo page: static files read once, served with their own security headers. It is a WHIP
  // client like any other (POST ./whip), so it needs nothing else from signaling.
  if (config.demo.enabled) {
    const folder = new URL('./demo/', import.meta.url);
    for (const { url, file, type } of DEMO_FILES) {
      const content = readFileSync(new URL(file, folder));
      app.get(url, async (_request, reply) =>
        reply
          .code(200)
          .headers({ ...DEMO_HEADERS, 'content-type': type })
          .send(content),
      );
    }
  }

  /** The session's transceiver, if the id is well formed and names one in the table with an API. */
  const locate = (
    id: string,
  ):
    | { resource: ResourceId; entry: TransceiverEntry & { api: string }; client: TransceiverApi }
    | undefined => {
    const resource = parseResourceId(id);
    if (resource === undefined) return undefined;
    // The one-cluster form (no cluster in the ID) names the first cluster.
    const cluster =
      resource.clusterId === undefined
        ? clusters[0]
        : clusters.find((candidate) => candidate.clusterId === resource.clusterId);
    const entry = cluster
      ?.routingTable()
      .transceivers.find((candidate) => candidate.id === resource.transceiverId);
    if (entry?.api === undefined) return undefined;
    return { resource, entry: { ...entry, api: entry.api }, client: cluster?.client ?? client };
  };
  const noSession = (reply: FastifyReply) => sendProblem(reply, 'not-found', 'no such session');

  const placer: Placer = {
    clusters,
    edges,
    nearest,
    maxAttempts: config.placement.maxAttempts,
    client,
    metrics,
    logger,
    ...(options.random === undefined ? {} : { random: options.random }),
  };

  /** Places a checked offer and answers; `onPlaced` is told the session resource it made. */
  const placeOffer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    offer: string,
    onPlaced: (resource: string) => void,
  ): Promise<FastifyReply> => {
    const caller = callerRegion(request.headers[regionHeader], request.ip, edges, policy);
    const metadata: Record<string, unknown> = { requestId: request.id };
    const userAgent = request.headers['user-agent'];
    if (userAgent !== undefined) metadata.userAgent = userAgent;
    if (caller.region !== undefined) metadata.region = caller.region;
    const placement = await placeSession(placer, { requestId: request.id, offer, caller, metadata });
    switch (placement.kind) {
      case 'placed': {
        const { transceiverId, sessionId } = placement;
        const clusterId = named ? placement.clusterId : undefined;
        const started = receivedAt.get(request);
        if (started !== undefined) metrics.offerToAnswer.observe((performance.now() - started) / 1000);
        onPlaced(formatResourceId(transceiverId, sessionId, clusterId));
        const etag = etagOf(placement.ufrag);
        if (etag !== undefined) reply.header('etag', etag);
        return reply
          .code(201)
          .headers({
            'content-type': SDP,
            location: sessionLocation(transceiverId, sessionId, clusterId),
            'accept-patch': ACCEPT_PATCH,
          })
          .send(placement.answer);
      }
      case 'offer-refused':
        return sendProblem(reply, placement.code, placement.detail);
      case 'transceiver-error':
        return sendProblem(reply, 'transceiver-error', placement.detail);
      case 'no-capacity':
        reply.header('retry-after', String(config.placement.retryAfterSeconds));
        return sendProblem(reply, 'no-capacity', placement.detail);
    }
  };

  const refuse = (reply: FastifyReply, code: ProblemCode, detail: string, retryAfterS?: number) => {
    metrics.offersRefused.inc({ reason: code });
    if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS));
    return sendProblem(reply, code, detail);
  };
  const reportLimits = () => {
    metrics.limitedClients.set({ kind: 'clients' }, clientLimits.clients);
    metrics.limitedClients.set({ kind: 'sessions' }, clientLimits.trackedSessions);
    metrics.limitedClients.set({ kind: 'evicted' }, clientLimits.evicted);
  };

  /**
   * Asks the transceivers whether the client's remembered sessions still live (in parallel, each
   * within the status timeout) and forgets the ones that are gone. No answer counts as alive.
   */
  const recheck = async (resources: readonly string[]) => {
    await Promise.all(
      resources.map(async (resource) => {
        const found = locate(decodeURIComponent(resource));
        if (found === undefined) {
          // Its transceiver left the routing table: the session went with it.
          clientLimits.forget(resource);
          metrics.sessionRechecks.inc({ outcome: 'gone' });
          return;
        }
        const result = await found.client.getSession(found.entry.api, found.resource.sessionId);
        const gone = result.kind === 'problem' && result.status === 404;
        if (gone) clientLimits.forget(resource);
        metrics.sessionRechecks.inc({ outcome: gone ? 'gone' : result.kind === 'ok' ? 'alive' : 'unknown' });
      }),
    );
  };

  // Order: the cheapest refusals first. The rate applies to every offer (valid or not), the shape
  // limits before anything parses the SDP, the session cap last (it may ask the transceivers).
  app.post('/whip', { onRequest: requireToken }, async (request, reply) => {
    const type = mediaTypeOf(request);
    if (type !== SDP) return unsupportedMediaType(reply, 'POST', type);
    const key = clientKey(
      request.ip,
      authenticate === undefined ? undefined : bearerToken(request.headers.authorization),
    );
    const admitted = clientLimits.takeOffer(key, Date.now());
    reportLimits();
    if (admitted.kind === 'rate-limited') {
      return refuse(
        reply,
        'rate-limited',
        `more than ${perClient.offerBurst} offers at once or ${perClient.offersPerMinute} a minute from this client`,
        admitted.retryAfterS,
      );
    }
    const offer = typeof request.body === 'string' ? request.body : '';
    const check = checkOffer(offer, { maxBytes, shape });
    if (!check.ok) return refuse(reply, check.problem, check.detail);

    let slot = clientLimits.reserve(key, Date.now());
    if (slot.kind === 'full' && slot.recheck.length > 0) {
      await recheck(slot.recheck);
      slot = clientLimits.reserve(key, Date.now());
    }
    if (slot.kind === 'full') {
      logger.info({ requestId: request.id, maxSessions: perClient.maxSessions }, 'client at its session cap');
      return refuse(
        reply,
        'too-many-sessions',
        `this client has ${perClient.maxSessions} live sessions (the limit); end one (DELETE its session URL) first`,
        perClient.retryAfterSeconds,
      );
    }
    let placed = false;
    try {
      return await placeOffer(request, reply, offer, (resource) => {
        placed = true;
        clientLimits.commit(key, resource, Date.now());
      });
    } finally {
      if (!placed) clientLimits.release(key);
      reportLimits();
    }
  });

  app.delete<{ Params: { id: string } }>(
    '/whip/sessions/:id',
    { onRequest: requireToken },
    async (request, reply) => {
      const found = locate(request.params.id);
      if (found === undefined) return noSession(reply);
      const result = await found.client.deleteSession(found.entry.api, found.resource.sessionId);
      if (result.kind === 'ok' || (result.kind === 'problem' && result.status === 404)) {
        // The client's slot is free at once, whoever ends the session.
        const { transceiverId, sessionId, clusterId } = found.resource;
        clientLimits.forget(formatResourceId(transceiverId, sessionId, clusterId));
      }
      if (result.kind === 'ok') {
        logger.info({ transceiver: found.entry.id, sessionId: found.resource.sessionId }, 'session ended');
        return reply.code(200).send();
      }
      if (result.kind === 'problem' && result.status === 404) return noSession(reply);
      metrics.transceiverErrors.inc({
        operation: 'delete',
        outcome: result.kind === 'problem' ? String(result.status) : result.kind,
      });
      logger.warn(
        {
          transceiver: found.entry.id,
          sessionId: found.resource.sessionId,
          problem: transceiverProblem(result),
        },
        'transceiver failed to end a session',
      );
      return sendProblem(reply, 'transceiver-error', 'the media server could not end the session');
    },
  );

  app.patch<{ Params: { id: string } }>(
    '/whip/sessions/:id',
    { onRequest: requireToken },
    async (request, reply) => {
      const type = mediaTypeOf(request);
      if (type !== SDPFRAG && type !== SDP) return unsupportedMediaType(reply, 'PATCH', type);
      const found = locate(request.params.id);
      if (found === undefined) return noSession(reply);
      const text = typeof request.body === 'string' ? request.body : '';

      if (type === SDPFRAG) {
        const fragment = parseTrickleFragment(text, { maxBytes });
        if (!fragment.ok) return sendProblem(reply, 'bad-sdp', fragment.detail);
        // RFC 9725 §4.3.3: an ICE restart carries If-Match: * (its examples quote it: "*"). The
        // transceiver API takes a full re-offer only, and signaling keeps no copy of the session's
        // SDP to build one from.
        const ifMatch = request.headers['if-match']?.trim();
        if (ifMatch === '*' || ifMatch === '"*"') {
          return sendProblem(
            reply,
            'ice-restart-unsupported',
            `ICE restart by ${SDPFRAG} is not supported: PATCH a full re-offer as ${SDP}, or end the session and POST a new offer`,
          );
        }
        // Trickled candidates are discarded (RFC 9725 §4.3.2 allows it): the server is ICE-lite
        // behind the relay and learns the client's addresses from its connectivity checks. The
        // session must exist, though: a PATCH to nothing is a 404, as for any other resource.
        const session = await found.client.getSession(found.entry.api, found.resource.sessionId);
        if (session.kind === 'problem' && session.status === 404) return noSession(reply);
        if (session.kind !== 'ok') {
          metrics.transceiverErrors.inc({
            operation: 'get',
            outcome: session.kind === 'problem' ? String(session.status) : session.kind,
          });
          return sendProblem(
            reply,
            'transceiver-error',
            'the media server could not be asked about the session',
          );
        }
        return reply.code(204).send();
      }

      const check = checkOffer(text, { maxBytes, shape });
      if (!check.ok) return refuse(reply, check.problem, check.detail);
      const result = await found.client.updateSession(found.entry.api, found.resource.sessionId, text);
      if (result.kind === 'ok') {
        const etag = etagOf(result.value.ufrag);
        if (etag !== undefined) reply.header('etag', etag);
        return reply.code(200).header('content-type', SDP).send(result.value.answer);
      }
      if (result.kind === 'problem' && result.status === 404) return noSession(reply);
      if (result.kind === 'problem' && result.status === 400 && isOfferProblem(result.code)) {
        return sendProblem(reply, result.code, result.detail ?? 'the media server refused the offer');
      }
      metrics.transceiverErrors.inc({
        operation: 'update',
        outcome: result.kind === 'problem' ? String(result.status) : result.kind,
      });
      logger.warn(
        {
          transceiver: found.entry.id,
          sessionId: found.resource.sessionId,
          problem: transceiverProblem(result),
        },
        'transceiver failed to renegotiate a session',
      );
      const code = result.kind === 'problem' && result.code ? ` (${result.code})` : '';
      return sendProblem(
        reply,
        'transceiver-error',
        `the media server could not renegotiate the session${code}`,
      );
    },
  );

  return app;
}
