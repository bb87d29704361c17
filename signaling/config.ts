// Signaling configuration: a YAML file, then `VOICE_EDGE_SIGNALING_*` environment overrides, then
// one schema. Any problem is one ConfigError that names the field (`npm run signaling` exits 2).
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { readConfigMapping } from '../config/config-file.ts';
import { applyEnvOverrides, ConfigError, invalidConfigError } from '../config/env-overrides.ts';
import { listOf } from '../config/list-of.ts';
import { BearerTokenSchema } from '../protocol/bearer-auth.ts';
import { CidrSchema } from '../protocol/cidr.ts';
import { TransportAddressSchema } from '../protocol/schema.ts';
import { DEFAULT_MAX_OFFER_BYTES, DEFAULT_OFFER_SHAPE_LIMITS } from '../protocol/sdp-check.ts';
import { RoutingTableSourceSchema, withPodNamespace } from '../routing/routing-table-config.ts';
import { REGION_PATTERN } from './region.ts';

export { ConfigError };

export const ENV_PREFIX = 'VOICE_EDGE_SIGNALING_';

const ipLiteral = z.union([z.ipv4(), z.ipv6()]);
const port = z.number().int().min(0).max(65535);

const token = BearerTokenSchema;

const origin = z.union([
  z.literal('*'),
  z
    .string()
    .regex(
      /^https?:\/\/[^/\s]+$/,
      'an origin is "*" or scheme://host[:port] with no path, e.g. https://app.example.com',
    ),
]);

const regionName = z
  .string()
  .regex(REGION_PATTERN, 'a region is lower-case letters, digits and "-" (e.g. eu-west)');

const ClusterSchema = z.strictObject({
  clusterId: z.number().int().min(0).max(0xffff),
  /** Where the cluster is (matched against callers' regions); optional. */
  region: regionName.optional(),
  /** Its routing table: `{ file }` or `{ configMap: { name, namespace } }`. */
  routingTable: RoutingTableSourceSchema,
  /** Its relays' public addresses (the answer's candidates when no edge relay fits the caller). */
  relays: z.array(TransportAddressSchema).min(1),
  /** Its relays' ICE-TCP addresses, advertised beside `relays` (docs/reaching-the-edge.md). */
  tcpRelays: z.array(TransportAddressSchema).max(8).default([]),
  /** Bearer tokens of this cluster's transceiver API; default: `transceivers.apiTokens`. */
  apiTokens: listOf(token).optional(),
});

const EdgeRelaySchema = z.strictObject({
  region: regionName,
  /** The edge relay's public addresses (it forwards to the clusters' relays: relay `mode: edge`). */
  relays: z.array(TransportAddressSchema).min(1),
  /** The edge relay's ICE-TCP addresses (it forwards TCP callers over the UDP tunnel). */
  tcpRelays: z.array(TransportAddressSchema).max(8).default([]),
  /** Callers from these ranges are in this region unless the region header says otherwise. */
  clientCidrs: z.array(CidrSchema).default([]),
  /** The clusters this edge relay forwards to (it has them as peers); default: every cluster. */
  clusters: z.array(z.number().int().min(0).max(0xffff)).optional(),
});

export const DEFAULT_REGION_HEADER = 'x-voice-edge-region';

/** The public server's connection limits: Node's own defaults, but with a header timeout that works. */
export const HTTP_DEFAULTS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  maxConnections: 10_000,
} as const;

const count = (max: number) => z.number().int().min(1).max(max);

const OfferShapeSchema = z.strictObject({
  maxMediaSections: count(64).default(DEFAULT_OFFER_SHAPE_LIMITS.maxMediaSections),
  maxLines: count(10_000).default(DEFAULT_OFFER_SHAPE_LIMITS.maxLines),
  maxLineLength: count(65_536).default(DEFAULT_OFFER_SHAPE_LIMITS.maxLineLength),
  maxAttributesPerSection: count(10_000).default(DEFAULT_OFFER_SHAPE_LIMITS.maxAttributesPerSection),
  maxFormatsPerSection: count(128).default(DEFAULT_OFFER_SHAPE_LIMITS.maxFormatsPerSection),
  maxSsrcLinesPerSection: count(10_000).default(DEFAULT_OFFER_SHAPE_LIMITS.maxSsrcLinesPerSection),
  maxCandidatesPerSection: count(10_000).default(DEFAULT_OFFER_SHAPE_LIMITS.maxCandidatesPerSection),
});

/**
 * Per-client limits: a person calling, even reloading a page, stays far below them; one address
 * cannot take a transceiver's sessions. Raise them for gateways and large NATs (docs/whip.md#limits).
 */
export const DEFAULT_PER_CLIENT_LIMITS = {
  offersPerMinute: 60,
  offerBurst: 20,
  maxSessions: 10,
  maxClients: 100_000,
  retryAfterSeconds: 5,
} as const;

const PerClientSchema = z.strictObject({
  offersPerMinute: count(1_000_000).default(DEFAULT_PER_CLIENT_LIMITS.offersPerMinute),
  offerBurst: count(1_000_000).default(DEFAULT_PER_CLIENT_LIMITS.offerBurst),
  maxSessions: count(1_000_000).default(DEFAULT_PER_CLIENT_LIMITS.maxSessions),
  maxClients: count(10_000_000).default(DEFAULT_PER_CLIENT_LIMITS.maxClients),
  /** Retry-After of a 429 too-many-sessions answer. */
  retryAfterSeconds: count(3600).default(DEFAULT_PER_CLIENT_LIMITS.retryAfterSeconds),
});

const RegionSchema = z.strictObject({
  /** The request header naming the caller's region (set by a CDN or load balancer, or the client). */
  header: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'an HTTP header name')
    .transform((name) => name.toLowerCase())
    .default(DEFAULT_REGION_HEADER),
  /** The caller's region when neither the header nor an edge relay's clientCidrs say. */
  default: regionName.optional(),
  /** Caller region → cluster regions, nearest first (overflow order). */
  nearest: z.record(regionName, z.array(regionName)).default({}),
});

export const SignalingConfigSchema = z
  .strictObject({
    /** The public WHIP server. */
    http: z
      .strictObject({
        host: ipLiteral.default('127.0.0.1'),
        port: port.default(8080),
        /**
         * Take the client's address from X-Forwarded-For (per-client limits, region by address).
         * Only behind a proxy that sets it: otherwise any client picks its own address.
         */
        trustProxy: z.boolean().default(false),
        /** A request's headers must have arrived within this (slow-header connections are closed). */
        headersTimeoutMs: z.number().int().min(100).max(300_000).default(HTTP_DEFAULTS.headersTimeoutMs),
        /** The whole request (headers and offer) must have arrived within this. */
        requestTimeoutMs: z.number().int().min(100).max(600_000).default(HTTP_DEFAULTS.requestTimeoutMs),
        /** An idle keep-alive connection is closed after this (longer than a load balancer's 60 s). */
        keepAliveTimeoutMs: z.number().int().min(0).max(600_000).default(HTTP_DEFAULTS.keepAliveTimeoutMs),
        /** Open connections at once; more are closed as they arrive. */
        maxConnections: z.number().int().min(1).default(HTTP_DEFAULTS.maxConnections),
      })
      .default({ host: '127.0.0.1', port: 8080, trustProxy: false, ...HTTP_DEFAULTS }),
    /** Health, readiness and metrics: for the kubelet and Prometheus, not for callers. */
    ops: z
      .strictObject({ host: ipLiteral.default('127.0.0.1'), port: port.default(9091) })
      .default({ host: '127.0.0.1', port: 9091 }),
    /**
     * `{ file }` or `{ configMap: { name, namespace } }` (routing/routing-table-config.ts): the one
     * cluster this signaling places calls in. Or, instead, `clusters` (global relay tier).
     */
    routingTable: RoutingTableSourceSchema.optional(),
    /** The cluster's public relay addresses, passed to the transceiver to advertise in the answer. */
    relays: z.array(TransportAddressSchema).default([]),
    /**
     * The cluster's relays' ICE-TCP addresses (relay `tcp.listen`, as clients reach them), advertised
     * beside `relays` for callers whose network blocks UDP (docs/reaching-the-edge.md).
     */
    tcpRelays: z.array(TransportAddressSchema).max(8).default([]),
    /**
     * Several clusters (docs/global-tier.md), tried nearest first for the caller's region; a full
     * one overflows to the next. Instead of `routingTable` and `relays`.
     */
    clusters: z.array(ClusterSchema).min(1).optional(),
    /** Edge relays: the answer advertises the one of the caller's region instead of the cluster's relays. */
    edgeRelays: z.array(EdgeRelaySchema).default([]),
    /** How the caller's region is found and which clusters are nearest to it. */
    region: RegionSchema.default({ header: DEFAULT_REGION_HEADER, nearest: {} }),
    /** Bearer tokens accepted on the WHIP routes; none = no authentication (local mode). */
    auth: z.strictObject({ tokens: listOf(token).default([]) }).default({ tokens: [] }),
    cors: z.strictObject({ allowOrigins: listOf(origin).default(['*']) }).default({ allowOrigins: ['*'] }),
    transceivers: z
      .strictObject({
        statusIntervalMs: z.number().int().min(100).default(1_000),
        statusTimeoutMs: z.number().int().min(10).default(500),
        /** A status older than this makes the transceiver unavailable. */
        statusStaleMs: z.number().int().min(200).default(3_000),
        /** POST/PATCH/DELETE /sessions. */
        requestTimeoutMs: z.number().int().min(100).default(5_000),
        /**
         * Bearer tokens of the transceivers' internal API (their `api.tokens`): the first is sent
         * on every call; the list form lets a rotation stage the next one (docs/transceiver-api.md).
         */
        apiTokens: listOf(token).default([]),
      })
      .default({
        statusIntervalMs: 1_000,
        statusTimeoutMs: 500,
        statusStaleMs: 3_000,
        requestTimeoutMs: 5_000,
        apiTokens: [],
      }),
    placement: z
      .strictObject({
        /** Transceivers tried for one offer when the first ones answer 503 or cannot be reached. */
        maxAttempts: z.number().int().min(1).max(10).default(3),
        /** Retry-After of a 503 no-capacity answer. */
        retryAfterSeconds: z.number().int().min(1).max(3600).default(5),
      })
      .default({ maxAttempts: 3, retryAfterSeconds: 5 }),
    /** What one offer and one client may cost (docs/whip.md#limits). */
    limits: z
      .strictObject({
        maxOfferBytes: z
          .number()
          .int()
          .min(1024)
          .max(1024 * 1024)
          .default(DEFAULT_MAX_OFFER_BYTES),
        /** The offer's shape: m= sections, lines, attributes (protocol/sdp-check.ts). */
        offer: OfferShapeSchema.default(DEFAULT_OFFER_SHAPE_LIMITS),
        /** Per client (address, and token with auth on), per replica. */
        perClient: PerClientSchema.default(DEFAULT_PER_CLIENT_LIMITS),
      })
      .default({
        maxOfferBytes: DEFAULT_MAX_OFFER_BYTES,
        offer: DEFAULT_OFFER_SHAPE_LIMITS,
        perClient: DEFAULT_PER_CLIENT_LIMITS,
      }),
    /**
     * The demo page at `GET /` (assets under `/demo/`): a browser WHIP client with live call
     * figures. Static files only; it calls the same WHIP endpoint as any client.
     */
    demo: z.strictObject({ enabled: z.boolean().default(true) }).default({ enabled: true }),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .default({ level: 'info' }),
    /**
     * On SIGTERM signaling turns unready at once, keeps serving for drainMs (so the load balancer
     * stops sending), then stops accepting and finishes the requests in flight.
     */
    shutdown: z.strictObject({ drainMs: z.number().int().min(0).default(5_000) }).default({ drainMs: 5_000 }),
  })
  .superRefine((config, context) => {
    const { statusIntervalMs, statusTimeoutMs, statusStaleMs } = config.transceivers;
    if (statusTimeoutMs >= statusIntervalMs) {
      context.addIssue({
        code: 'custom',
        path: ['transceivers', 'statusTimeoutMs'],
        message: `must be shorter than statusIntervalMs (${statusIntervalMs})`,
      });
    }
    if (statusStaleMs <= statusIntervalMs) {
      context.addIssue({
        code: 'custom',
        path: ['transceivers', 'statusStaleMs'],
        message: `must be longer than statusIntervalMs (${statusIntervalMs})`,
      });
    }
    if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
      context.addIssue({
        code: 'custom',
        path: ['http', 'headersTimeoutMs'],
        message: `must not be longer than requestTimeoutMs (${config.http.requestTimeoutMs})`,
      });
    }
    if (config.cors.allowOrigins.includes('*') && config.cors.allowOrigins.length > 1) {
      context.addIssue({
        code: 'custom',
        path: ['cors', 'allowOrigins'],
        message: '"*" allows every origin: list it alone or not at all',
      });
    }
  })
  // Checked even when other fields are wrong too, so that one message names every missing field.
  .superRefine(
    (config, context) => {
      if (config.routingTable === undefined && config.clusters === undefined)
        context.addIssue({
          code: 'invalid_type',
          expected: 'object',
          input: undefined,
          path: ['routingTable'],
          message: 'required: { file: <path> } or { configMap: { name, namespace } }',
        });
      if (config.routingTable !== undefined && config.clusters !== undefined)
        context.addIssue({
          code: 'custom',
          path: ['clusters'],
          message: 'set routingTable (one cluster) or clusters (several), not both',
        });
      // Every call to a transceiver carries a token: each cluster's own, or the shared one.
      const shared = config.transceivers?.apiTokens ?? [];
      const needShared =
        config.clusters === undefined || config.clusters.some((cluster) => !cluster.apiTokens?.length);
      if (needShared && shared.length === 0)
        context.addIssue({
          code: 'custom',
          path: ['transceivers', 'apiTokens'],
          message: `required: the bearer token of the transceivers' API (one of their api.tokens)${config.clusters === undefined ? '' : ', or apiTokens on every cluster'}`,
        });
      const ids = new Set<number>();
      config.clusters?.forEach((cluster, index) => {
        if (ids.has(cluster.clusterId))
          context.addIssue({
            code: 'custom',
            path: ['clusters', index, 'clusterId'],
            message: `cluster ${cluster.clusterId} is listed twice`,
          });
        ids.add(cluster.clusterId);
      });
      for (const [index, edge] of (config.edgeRelays ?? []).entries()) {
        for (const id of edge.clusters ?? []) {
          if (config.clusters !== undefined && !ids.has(id))
            context.addIssue({
              code: 'custom',
              path: ['edgeRelays', index, 'clusters'],
              message: `cluster ${id} is not in clusters`,
            });
        }
      }
    },
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  );

export type SignalingConfig = z.output<typeof SignalingConfigSchema>;

/**
 * Reads, overrides and validates; with no file (a pod), the environment alone is the configuration.
 * `routingTable.file` is resolved against the config file's folder (the working folder without one).
 */
export function loadSignalingConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): SignalingConfig {
  const raw = file === undefined ? {} : readConfigMapping(file);
  const result = SignalingConfigSchema.safeParse(
    withPodNamespace(applyEnvOverrides(raw, env, ENV_PREFIX), env),
  );
  if (!result.success) throw invalidConfigError('signaling', file, ENV_PREFIX, result.error);
  const config = result.data;
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  if (config.routingTable?.file !== undefined)
    config.routingTable = { file: resolve(base, config.routingTable.file) };
  for (const cluster of config.clusters ?? []) {
    if (cluster.routingTable.file !== undefined)
      cluster.routingTable = { file: resolve(base, cluster.routingTable.file) };
  }
  return config;
}
