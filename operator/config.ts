// Operator configuration: an optional YAML file, then `VOICE_EDGE_OPERATOR_*` environment overrides
// (the chart configures the operator by environment alone), then one schema. Any problem is one
// ConfigError naming the field (and, without a file, the variable that sets it).
import { z } from 'zod';
import { readConfigMapping } from '../config/config-file.ts';
import { applyEnvOverrides, ConfigError, invalidConfigError } from '../config/env-overrides.ts';

export { ConfigError };

const OPERATOR_ENV_PREFIX = 'VOICE_EDGE_OPERATOR_';

const ipLiteral = z.union([z.ipv4(), z.ipv6()]);
const dnsLabel = z
  .string()
  .max(63)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    'must be a Kubernetes namespace name (lower-case letters, digits, "-")',
  );

/**
 * An environment variable is read as YAML: an empty value is null and `123` a number. Names and
 * namespaces are text whatever they look like.
 */
const asText = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (value === null ? undefined : typeof value === 'number' ? String(value) : value),
    schema,
  );

/** Named points where the operator can be made to crash (SIGKILL itself): for tests only. */
const CRASH_POINTS = ['after-id-allocation', 'after-pod-create'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

const OperatorConfigSchema = z
  .strictObject({
    /** The image of relay, signaling and transceiver pods when the resources name none. */
    image: asText(z.string().min(1).default('ghcr.io/voice-edge/voice-edge:latest')),
    /** One namespace to watch; empty: all namespaces. */
    watchNamespace: asText(z.union([z.literal(''), dnsLabel]).default('')),
    /** This replica's name (the downward API's metadata.name): its leader-election identity. */
    podName: asText(z.string().optional()),
    leaderElection: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Where the Lease lives; default: POD_NAMESPACE, else the in-cluster namespace, else default. */
        namespace: asText(z.union([z.literal(''), dnsLabel]).optional()),
        leaseName: z.string().min(1).default('voice-edge-operator'),
        leaseDurationSeconds: z.number().int().min(1).max(3600).default(15),
        /** A leader that cannot renew for this long stops reconciling (before the lease can expire). */
        renewDeadlineMs: z.number().int().min(100).default(10_000),
        retryPeriodMs: z.number().int().min(50).default(2_000),
      })
      .prefault({}),
    /** /healthz, /readyz and /metrics. */
    http: z
      .strictObject({
        host: ipLiteral.default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(9095),
      })
      .prefault({}),
    /** Polling of every transceiver's GET /status (live sessions for status and autoscaling). */
    status: z
      .strictObject({
        intervalMs: z.number().int().min(100).default(2_000),
        /** Default: 1000 ms, or half the interval when that is shorter. */
        timeoutMs: z.number().int().min(10).optional(),
        concurrency: z.number().int().min(1).max(256).default(16),
      })
      .prefault({}),
    /**
     * Who the operator is, for the NetworkPolicies it keeps on transceiver pods (their API port
     * accepts the operator's pods): its pods' labels and namespace (default: POD_NAMESPACE, else the
     * in-cluster namespace; unknown: the labels in any namespace). The chart sets both.
     */
    networkPolicy: z
      .strictObject({
        operatorNamespace: asText(z.union([z.literal(''), dnsLabel]).optional()),
        operatorPodLabels: z
          .record(z.string().min(1), asText(z.string()))
          .refine((labels) => Object.keys(labels).length > 0, 'must name at least one label')
          .default({ 'app.kubernetes.io/name': 'voice-edge', 'app.kubernetes.io/component': 'operator' }),
      })
      .prefault({}),
    /** Reconciles running at once (never two for one object). */
    workers: z.number().int().min(1).max(32).default(2),
    /** Every object is reconciled at least this often, changed or not (drift repair). */
    resyncSeconds: z.number().int().min(10).default(300),
    watch: z
      .strictObject({
        backoffInitialMs: z.number().int().min(10).default(500),
        backoffMaxMs: z.number().int().min(10).default(30_000),
        /** The API server ends each watch after about this long and it is restarted. */
        timeoutSeconds: z.number().int().min(5).default(300),
      })
      .prefault({}),
    /** Requeue backoff of a failing reconcile. */
    retry: z
      .strictObject({
        initialMs: z.number().int().min(10).default(200),
        maxMs: z.number().int().min(10).default(60_000),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
    /** Fault injection for tests: never set in production. */
    faults: z.strictObject({ crashAt: z.enum(CRASH_POINTS).optional() }).prefault({}),
  })
  .superRefine((config, context) => {
    const election = config.leaderElection;
    if (election.renewDeadlineMs >= election.leaseDurationSeconds * 1000) {
      context.addIssue({
        code: 'custom',
        path: ['leaderElection', 'renewDeadlineMs'],
        message: `must be shorter than leaseDurationSeconds (${election.leaseDurationSeconds} s)`,
      });
    }
    if (election.retryPeriodMs >= election.renewDeadlineMs) {
      context.addIssue({
        code: 'custom',
        path: ['leaderElection', 'retryPeriodMs'],
        message: `must be shorter than renewDeadlineMs (${election.renewDeadlineMs})`,
      });
    }
    if (config.status.timeoutMs !== undefined && config.status.timeoutMs >= config.status.intervalMs) {
      context.addIssue({
        code: 'custom',
        path: ['status', 'timeoutMs'],
        message: `must be shorter than intervalMs (${config.status.intervalMs})`,
      });
    }
    if (config.watch.backoffInitialMs > config.watch.backoffMaxMs) {
      context.addIssue({
        code: 'custom',
        path: ['watch', 'backoffInitialMs'],
        message: `must not exceed backoffMaxMs (${config.watch.backoffMaxMs})`,
      });
    }
  });

type ParsedConfig = z.output<typeof OperatorConfigSchema>;
export type OperatorConfig = Omit<ParsedConfig, 'status'> & {
  status: ParsedConfig['status'] & { timeoutMs: number };
};

/** Reads (when a file is given), overrides and validates. */
export function loadOperatorConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): OperatorConfig {
  const raw = file === undefined ? {} : readConfigMapping(file);
  const result = OperatorConfigSchema.safeParse(applyEnvOverrides(raw, env, OPERATOR_ENV_PREFIX));
  if (!result.success) throw invalidConfigError('operator', file, OPERATOR_ENV_PREFIX, result.error);
  const config = result.data;
  const { intervalMs, timeoutMs } = config.status;
  return {
    ...config,
    status: { ...config.status, timeoutMs: timeoutMs ?? Math.min(1_000, Math.floor(intervalMs / 2)) },
  };
}
