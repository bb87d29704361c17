// Transceiver configuration: YAML, then `VOICE_EDGE_TRANSCEIVER_*` environment overrides (the
// operator sets the transceiver ID that way), then one schema.
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_OPUS_APPLICATION, OPUS_APPLICATIONS } from '../audio/opus-application.ts';
import { readConfigMapping } from '../config/config-file.ts';
import { applyEnvOverrides, ConfigError, configOrigin, invalidConfigError } from '../config/env-overrides.ts';
import { listOf } from '../config/list-of.ts';
import { parseTransportAddress } from '../protocol/address.ts';
import { isSampleRate, SAMPLE_RATES, type SampleRate } from '../protocol/backend.ts';
import { BearerTokenSchema } from '../protocol/bearer-auth.ts';
import { CidrSchema } from '../protocol/cidr.ts';
import { formatHostPort } from '../protocol/host-port.ts';
import { TransportAddressSchema } from '../protocol/schema.ts';
import { ACCOUNT_SID, DEFAULT_ACCOUNT_SID } from '../protocol/twilio-media-streams.ts';
import { ROUTING_KEYS_ENV } from '../routing/keyring-source.ts';
import { RoutingTableSourceSchema, withPodNamespace } from '../routing/routing-table-config.ts';
import { BACKEND_PROTOCOLS } from './backend-wire.ts';

/** Most backend audio queued for a caller by default (s): docs/reliability.md. */
export const DEFAULT_MAX_QUEUE_SECONDS = 20;

const ipLiteral = z.union([z.ipv4(), z.ipv6()]);

/** The variable that sets `api.tokens` (the operator fills it from the pool's API Secret). */
export const TOKENS_ENV = 'VOICE_EDGE_TRANSCEIVER_API__TOKENS';

export const TransceiverConfigSchema = z.strictObject({
  clusterId: z.number().int().min(0).max(0xffff),
  /** Unique in the cluster; allocated by the operator and carried in every ufrag. */
  transceiverId: z.number().int().min(0).max(0xffffffff),
  /**
   * The tunnel socket: the address the routing table names for this transceiver. Tunnel datagrams
   * are accepted only from `allowedRelays` (addresses or CIDRs) and the routing table's
   * `relaySources`; anything else is dropped and counted (docs/security.md).
   */
  tunnel: z
    .strictObject({
      /** `ip:port`, an IPv6 address in brackets (`[fd00::9]:7000`); or `host` and `port` instead. */
      listen: TransportAddressSchema.optional(),
      /**
       * The same address as an IP and a port apart, instead of `listen`: the operator sets `host` to
       * the pod's IP (`$(POD_IP)`), which Kubernetes writes without brackets, IPv4 or IPv6 alike.
       */
      host: ipLiteral.optional(),
      port: z.number().int().min(1).max(65535).optional(),
      allowedRelays: z.array(CidrSchema).default([]),
    })
    .transform(({ listen, host, port, allowedRelays }, context) => {
      if (listen !== undefined && (host !== undefined || port !== undefined)) {
        context.addIssue({
          code: 'custom',
          path: ['listen'],
          message: 'give listen or host and port, not both',
        });
        return z.NEVER;
      }
      if (listen !== undefined) return { listen, allowedRelays };
      if (host === undefined || port === undefined) {
        context.addIssue({
          code: 'custom',
          path: [host === undefined ? 'host' : 'port'],
          message: 'required: listen ("ip:port", "[ipv6]:port") or host and port',
        });
        return z.NEVER;
      }
      return { listen: parseTransportAddress(formatHostPort(host, port)), allowedRelays };
    }),
  /**
   * The cluster's routing table (`{ file }` or `{ configMap: { name, namespace } }`), followed for
   * its `relaySources`: the operator publishes its relay pods' addresses there.
   */
  routingTable: RoutingTableSourceSchema.optional(),
  /** Public relay addresses advertised when a request names none. */
  relays: z.array(TransportAddressSchema).min(1),
  /** Public relay ICE-TCP addresses advertised beside `relays` (docs/reaching-the-edge.md). */
  tcpRelays: z.array(TransportAddressSchema).max(8).default([]),
  routingKeys: z.strictObject({ file: z.string().min(1) }).optional(),
  backend: z
    .strictObject({
      url: z.string().regex(/^wss?:\/\//, 'must start with ws:// or wss://'),
      /** What the WebSocket speaks (docs/backend-protocol.md): voice-edge's own, or Twilio Media Streams. */
      protocol: z.enum(BACKEND_PROTOCOLS).default('voice-edge'),
      /** PCM16 rate of the voice-edge protocol (required there); Twilio's is 8000 Hz μ-law, always. */
      sampleRate: z.custom<SampleRate>(isSampleRate, `must be one of ${SAMPLE_RATES.join(', ')}`).optional(),
      connectTimeoutMs: z.number().int().min(100).default(5_000),
      /** Twilio's accountSid, sent in `start` and `stop` (twilio-media-streams). */
      accountSid: z
        .string()
        .regex(ACCOUNT_SID, 'must be AC followed by 32 lowercase hex digits')
        .default(DEFAULT_ACCOUNT_SID),
    })
    .superRefine((backend, context) => {
      if (backend.protocol === 'voice-edge' && backend.sampleRate === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['sampleRate'],
          message: 'required with the voice-edge protocol',
        });
      }
      if (
        backend.protocol === 'twilio-media-streams' &&
        backend.sampleRate !== undefined &&
        backend.sampleRate !== 8000
      ) {
        context.addIssue({
          code: 'custom',
          path: ['sampleRate'],
          message: 'twilio-media-streams carries 8000 Hz μ-law: leave sampleRate out or set 8000',
        });
      }
    })
    .transform((backend) => ({ ...backend, sampleRate: backend.sampleRate ?? (8000 as SampleRate) })),
  sessions: z
    .strictObject({
      /** Per process: a bound on memory and work; what one core carries is measured in docs/benchmarks.md. */
      max: z.number().int().min(1).default(200),
      /** Offer answered → DTLS connected. */
      connectTimeoutMs: z.number().int().min(1_000).default(15_000),
      /** No STUN or media from the client for this long ends the call (ICE-lite has no consent checks). */
      mediaTimeoutMs: z.number().int().min(1_000).default(15_000),
      /** RTCP-derived quality sent to the backend and to metrics this often. */
      qualityIntervalMs: z.number().int().min(500).default(5_000),
    })
    .default({ max: 200, connectTimeoutMs: 15_000, mediaTimeoutMs: 15_000, qualityIntervalMs: 5_000 }),
  /** Missing is `{}`, so that the one required field, `tokens`, is the one the error names. */
  api: z.preprocess(
    (value) => value ?? {},
    z.strictObject({
      host: ipLiteral.default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8090),
      /**
       * Bearer tokens accepted on every route but /healthz and /metrics (api-auth.ts); several
       * while one is rotated out (docs/transceiver-api.md#authentication).
       */
      tokens: listOf(BearerTokenSchema, {
        count: 1,
        message: `required: at least one bearer token, as signaling and the operator send (${TOKENS_ENV}=<token>[,<token>…])`,
      }),
    }),
  ),
  audio: z
    .strictObject({
      /**
       * How the stream to callers is encoded (audio/opus-application.ts): `restricted-lowdelay`
       * (CELT, 64 kb/s, the default) or `voip` (SILK, 32 kb/s: half the bits, five times the
       * encoding CPU).
       */
      opusApplication: z.enum(OPUS_APPLICATIONS).default(DEFAULT_OPUS_APPLICATION),
      /**
       * libopus complexity of the stream to callers (0–10): CPU against quality. By default 0 for
       * `restricted-lowdelay`, 5 for `voip` (docs/benchmarks.md measures what each level costs).
       */
      opusComplexity: z.number().int().min(0).max(10).optional(),
      /**
       * Most backend audio queued for a caller (s): what a backend sending ahead of real time can
       * put between itself and the caller. Beyond it the oldest audio is dropped and the backend
       * told (`queue-overflow`). 20 by default: a long spoken answer sent at once fits.
       */
      maxQueueSeconds: z.number().min(1).max(600).default(DEFAULT_MAX_QUEUE_SECONDS),
      /**
       * Ask callers for Opus DTX (`usedtx=1` in the answer): a caller whose user is silent sends a
       * packet every 400 ms instead of 50 a second. The backend still gets every frame, silence
       * made up for the pauses (docs/transceiver.md#audio). On by default.
       */
      callerDtx: z.boolean().default(true),
    })
    .default({
      opusApplication: DEFAULT_OPUS_APPLICATION,
      maxQueueSeconds: DEFAULT_MAX_QUEUE_SECONDS,
      callerDtx: true,
    }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .default({ level: 'info' }),
  /** On SIGTERM: stop taking sessions, let calls run this long, then end them. */
  shutdown: z.strictObject({ graceMs: z.number().int().min(0).default(30_000) }).default({ graceMs: 30_000 }),
});

export type TransceiverConfig = z.output<typeof TransceiverConfigSchema>;

export const TRANSCEIVER_ENV_PREFIX = 'VOICE_EDGE_TRANSCEIVER_';

/** `file`: where `raw` came from, named in errors; undefined when the environment alone configures. */
export function parseTransceiverConfig(
  raw: Record<string, unknown>,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
): TransceiverConfig {
  const result = TransceiverConfigSchema.safeParse(
    withPodNamespace(applyEnvOverrides(raw, env, TRANSCEIVER_ENV_PREFIX), env),
  );
  if (!result.success) throw invalidConfigError('transceiver', file, TRANSCEIVER_ENV_PREFIX, result.error);
  const config = result.data;
  if (config.tunnel.allowedRelays.length === 0 && config.routingTable === undefined) {
    throw new ConfigError(
      `invalid transceiver config ${configOrigin(file, TRANSCEIVER_ENV_PREFIX)}: tunnel.allowedRelays or routingTable is required: the transceiver accepts tunnel datagrams from known relays only`,
    );
  }
  if (!config.routingKeys && !env[ROUTING_KEYS_ENV]) {
    throw new ConfigError(
      `invalid transceiver config ${configOrigin(file, TRANSCEIVER_ENV_PREFIX)}: routingKeys.file is required (or set ${ROUTING_KEYS_ENV})`,
    );
  }
  return config;
}

/** Reads, overrides and validates; with no file (a pod), the environment alone is the configuration. */
export function loadTransceiverConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): TransceiverConfig {
  const config = parseTransceiverConfig(file === undefined ? {} : readConfigMapping(file), file, env);
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  if (config.routingKeys) config.routingKeys.file = resolve(base, config.routingKeys.file);
  if (config.routingTable?.file !== undefined)
    config.routingTable = { file: resolve(base, config.routingTable.file) };
  return config;
}
