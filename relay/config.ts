// Relay configuration: a YAML file, then environment overrides, then one schema. Any problem is one
// ConfigError that names the field, so `npm run relay` fails with a message a person can act on.
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { readConfigMapping } from '../config/config-file.ts';
import {
  applyEnvOverrides as applyPrefixedEnvOverrides,
  ConfigError,
  configOrigin,
  invalidConfigError,
} from '../config/env-overrides.ts';
import { CidrSchema } from '../protocol/cidr.ts';
import { PeerClusterSchema } from '../protocol/routing-table.ts';
import { TransportAddressSchema } from '../protocol/schema.ts';
import { RoutingTableSourceSchema, withPodNamespace } from '../routing/routing-table-config.ts';

export { ConfigError };

const ipLiteral = z.union([z.ipv4(), z.ipv6()]);

export const RelayConfigSchema = z
  .strictObject({
    /**
     * `cluster` (default): this cluster's relay; it delivers this cluster's sessions to transceivers
     * and forwards peer clusters' sessions to their relays. `edge`: an edge relay (global relay tier,
     * docs/global-tier.md) with no cluster of its own; every session goes to a peer's relays.
     */
    mode: z.enum(['cluster', 'edge']).default('cluster'),
    /**
     * This cluster's ID (0–65535): ufrags naming another cluster (not a peer) are dropped. An edge
     * relay delivers no session itself; its clusterId names the cluster whose routing table it
     * follows for peers (any ID when it has peers from `peers` only).
     */
    clusterId: z.number().int().min(0).max(0xffff),
    /** Peer clusters and their relays, besides the routing table's `peers` (these win on a clash). */
    peers: z.array(PeerClusterSchema).default([]),
    /** Edge relays (addresses or CIDRs) allowed to send tunnel datagrams to the public port, besides the table's. */
    edgeRelays: z.array(CidrSchema).default([]),
    /** Public UDP addresses; each worker binds every one of them with SO_REUSEPORT. */
    listen: z.array(TransportAddressSchema).min(1),
    /**
     * ICE-TCP (RFC 6544, docs/reaching-the-edge.md): TCP addresses for clients whose networks block
     * UDP, listened on by every worker (SO_REUSEPORT). Empty (the default): no TCP port. The limits
     * are per worker, as the flow limits are.
     */
    tcp: z
      .strictObject({
        listen: z.array(TransportAddressSchema).default([]),
        /** A connection whose first packet is not a valid STUN Binding request by then is closed. */
        firstPacketTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
        /** Open connections at most, all sources together; more are refused at accept. */
        maxConnections: z.number().int().min(1).default(10_000),
        /** Open connections at most from one IP address (a NAT may hide several callers). */
        maxConnectionsPerSource: z.number().int().min(1).default(32),
        /** Bytes queued for a client that reads slowly, after which its packets are dropped. */
        sendBufferBytes: z
          .number()
          .int()
          .min(4_096)
          .default(256 * 1024),
        /** Longest packet a client may frame; ICE agents send at most about 1,500 bytes. */
        maxPacketBytes: z.number().int().min(1_500).max(65_535).default(4_096),
      })
      .default({
        listen: [],
        firstPacketTimeoutMs: 5_000,
        maxConnections: 10_000,
        maxConnectionsPerSource: 32,
        sendBufferBytes: 256 * 1024,
        maxPacketBytes: 4_096,
      }),
    /** Worker threads, each with its own sockets and flow table; "auto" = one per core. */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default('auto'),
    tunnel: z
      .strictObject({
        /** Local addresses of the tunnel sockets (one per family, ephemeral port per worker). */
        bindV4: z.ipv4().default('0.0.0.0'),
        bindV6: z.ipv6().optional(),
      })
      .default({ bindV4: '0.0.0.0' }),
    /**
     * `{ file }` or `{ configMap: { name, namespace } }` (routing/routing-table-config.ts). Optional
     * for an edge relay, whose peers may all come from `peers`.
     */
    routingTable: RoutingTableSourceSchema.optional(),
    /** The keyring file (docs/architecture.md#the-ufrag-is-the-routing-key); the env var VOICE_EDGE_ROUTING_KEYS may carry it instead. */
    routingKeys: z.strictObject({ file: z.string().min(1) }).optional(),
    flows: z
      .strictObject({
        idleTimeoutMs: z.number().int().min(1000).default(30_000),
        maxFlows: z.number().int().min(1).default(200_000),
        newFlowsPerSourcePerSecond: z.number().int().min(1).default(20),
      })
      .default({ idleTimeoutMs: 30_000, maxFlows: 200_000, newFlowsPerSourcePerSecond: 20 }),
    redis: z
      .strictObject({
        url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'),
        keyPrefix: z.string().default('voice-edge:'),
        ttlSeconds: z.number().int().min(5).default(120),
        lookupTimeoutMs: z.number().int().min(1).max(5000).default(50),
        maxConcurrentLookups: z.number().int().min(1).default(256),
        lookupsPerSourcePerSecond: z.number().int().min(1).default(5),
        negativeCacheMs: z.number().int().min(0).default(5_000),
      })
      .optional(),
    http: z
      .strictObject({
        host: ipLiteral.default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9090),
      })
      .default({ host: '127.0.0.1', port: 9090 }),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .default({ level: 'info' }),
    /**
     * On SIGTERM the relay turns unready and stops creating flows at once, keeps forwarding existing
     * flows for drainMs (so the load balancer can move clients to other replicas), then exits.
     */
    shutdown: z.strictObject({ drainMs: z.number().int().min(0).default(5_000) }).default({ drainMs: 5_000 }),
    /** SO_RCVBUF/SO_SNDBUF of every socket (the kernel may clamp it to net.core.rmem_max/wmem_max). */
    socketBufferBytes: z
      .number()
      .int()
      .min(65_536)
      .default(4 * 1024 * 1024),
  })
  // Required in mode cluster: checked even when other fields are wrong too, so that one message
  // names every missing field.
  .superRefine(
    (config, context) => {
      if (config.mode !== 'edge' && config.routingTable === undefined)
        context.addIssue({
          code: 'invalid_type',
          expected: 'object',
          input: undefined,
          path: ['routingTable'],
          message: 'required: { file: <path> } or { configMap: { name, namespace } } (in mode cluster)',
        });
    },
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  );

export type RelayConfig = z.output<typeof RelayConfigSchema> & { workerCount: number };

const ENV_PREFIX = 'VOICE_EDGE_RELAY_';

/**
 * `VOICE_EDGE_RELAY_<FIELD>[__<FIELD>…]` overrides a field; names are SCREAMING_SNAKE forms of the
 * YAML keys and values are read as YAML scalars, e.g. `VOICE_EDGE_RELAY_REDIS__URL=redis://r:6379`,
 * `VOICE_EDGE_RELAY_FLOWS__MAX_FLOWS=5000`, `VOICE_EDGE_RELAY_LISTEN='["0.0.0.0:3478"]'`.
 */
export function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  return applyPrefixedEnvOverrides(raw, env, ENV_PREFIX);
}

/**
 * Reads, overrides and validates; with no file (a pod), the environment alone is the configuration.
 * File paths inside are resolved against the config file's folder (the working folder without one).
 */
export function loadRelayConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const raw = file === undefined ? {} : readConfigMapping(file);
  const result = RelayConfigSchema.safeParse(withPodNamespace(applyEnvOverrides(raw, env), env));
  if (!result.success) throw invalidConfigError('relay', file, ENV_PREFIX, result.error);
  const config = result.data;
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  if (config.routingTable?.file !== undefined)
    config.routingTable = { file: resolve(base, config.routingTable.file) };
  if (config.routingKeys) config.routingKeys.file = resolve(base, config.routingKeys.file);
  if (!config.routingKeys && !env.VOICE_EDGE_ROUTING_KEYS) {
    throw new ConfigError(
      `invalid relay config ${configOrigin(file, ENV_PREFIX)}: routingKeys.file is required (or set VOICE_EDGE_ROUTING_KEYS)`,
    );
  }
  return { ...config, workerCount: config.workers === 'auto' ? availableParallelism() : config.workers };
}
