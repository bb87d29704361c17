// The voice-edge.io/v1alpha1 API as the operator reads it: VoiceEdgeCluster and TransceiverPool
// (crds/*.yaml is the source of truth; these schemas mirror it with the same defaults so an object
// written before a default existed, or by a client that skipped validation, reads the same), and
// the names, labels, annotations and finalizers every part of the operator shares.
import { z } from 'zod';
import {
  DEFAULT_OPUS_APPLICATION,
  OPUS_APPLICATION_DEFAULTS,
  OPUS_APPLICATIONS,
} from '../../audio/opus-application.ts';
import { TransportAddressSchema } from '../../protocol/schema.ts';
import { ACCOUNT_SID, TWILIO_MEDIA_FORMAT } from '../../protocol/twilio-media-streams.ts';
import { BACKEND_PROTOCOLS } from '../../transceiver/backend-wire.ts';

export const GROUP = 'voice-edge.io';
export const VERSION = 'v1alpha1';
const API_VERSION = `${GROUP}/${VERSION}`;
export const CLUSTER_KIND = 'VoiceEdgeCluster';
export const POOL_KIND = 'TransceiverPool';
export const CLUSTER_PLURAL = 'voiceedgeclusters';
export const POOL_PLURAL = 'transceiverpools';

/** Field manager of everything the operator applies or patches. */
export const FIELD_MANAGER = 'voice-edge-operator';
/** Field manager of the built-in autoscaler's writes to spec.replicas (as the HPA has its own). */
export const AUTOSCALER_FIELD_MANAGER = 'voice-edge-autoscaler';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_POOL = 'voice-edge.io/pool';
export const LABEL_TRANSCEIVER_ID = 'voice-edge.io/transceiver-id';
export const NAME_VALUE = 'voice-edge';
export const MANAGED_BY_VALUE = 'voice-edge-operator';

export const ANNOTATION_DRAINING_SINCE = 'voice-edge.io/draining-since';
/** Hash of what a transceiver pod was built from: a pod with another hash is replaced by draining. */
export const ANNOTATION_TEMPLATE_HASH = 'voice-edge.io/template-hash';
/**
 * Hash of the internal-API credential's `tokens` on transceiver pods and the signaling pod template:
 * a rotated credential rolls both (transceivers by draining).
 */
export const ANNOTATION_API_TOKENS_HASH = 'voice-edge.io/transceiver-api-tokens-hash';

export const POOL_FINALIZER = 'voice-edge.io/drain';
export const CLUSTER_FINALIZER = 'voice-edge.io/cluster';

export const COMPONENT = {
  transceiver: 'transceiver',
  relay: 'relay',
  signaling: 'signaling',
  routingTable: 'routing-table',
  transceiverIds: 'transceiver-ids',
  transceiverApi: 'transceiver-api',
} as const;

export const TRANSCEIVER_TUNNEL_PORT = 7000;
export const TRANSCEIVER_API_PORT = 8090;
export const RELAY_HTTP_PORT = 9090;
export const SIGNALING_OPS_PORT = 9091;
export const ROUTING_TABLE_KEY = 'routing.json';
export const LEDGER_KEY = 'next';
/** The key of the internal-API credential Secret: comma-separated bearer tokens, the first is sent. */
export const API_TOKENS_KEY = 'tokens';

export const routingConfigMapName = (cluster: string) => `${cluster}-routing`;
export const ledgerConfigMapName = (cluster: string) => `${cluster}-transceiver-ids`;
export const relayName = (cluster: string) => `${cluster}-relay`;
export const signalingName = (cluster: string) => `${cluster}-signaling`;
export const routingReaderName = (cluster: string) => `${cluster}-routing-reader`;
export const transceiverPodName = (pool: string, id: number) => `${pool}-${id}`;
/** The NetworkPolicy that guards a cluster's transceiver pods. */
export const transceiverPolicyName = (cluster: string) => `${cluster}-transceiver`;
/** The internal-API credential Secret: spec.transceiverApi.secretName, else `<cluster>-transceiver-api`. */
export const transceiverApiSecretName = (cluster: {
  metadata: { name: string };
  spec: VoiceEdgeClusterSpec;
}) => cluster.spec.transceiverApi.secretName ?? `${cluster.metadata.name}-transceiver-api`;

// --- object metadata, as much of it as the operator reads ---

const OwnerReferenceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});

export const ObjectMetaSchema = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(OwnerReferenceSchema).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

// --- conditions ---

const CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

const ConditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().optional(),
  lastTransitionTime: z.string(),
  reason: z.string(),
  message: z.string(),
});
export type Condition = z.infer<typeof ConditionSchema>;

// --- VoiceEdgeCluster ---

/** Service.spec.ipFamilies' values. */
const IP_FAMILIES = ['IPv4', 'IPv6'] as const;
export type IpFamily = (typeof IP_FAMILIES)[number];

const port = z.number().int().min(1).max(65535);
const nodePort = z.number().int().min(30000).max(32767);
/** `resources` and similar fields are passed to the pod spec as they are (the CRD preserves them). */
const opaqueObject = z.record(z.string(), z.unknown());

/** An `ip:port` the relays answer on, kept as the text the user wrote (validated as an address). */
const addressText = z.string().refine((text) => TransportAddressSchema.safeParse(text).success, {
  message: 'must be ip:port or [ipv6]:port',
});

const labelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string().min(1),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const networkPolicyPeer = z
  .object({ namespaceSelector: labelSelector.optional(), podSelector: labelSelector.optional() })
  .refine((peer) => peer.namespaceSelector !== undefined || peer.podSelector !== undefined, {
    message: 'needs namespaceSelector or podSelector',
  });

export const VoiceEdgeClusterSpecSchema = z.object({
  clusterId: z.number().int().min(0).max(0xffff),
  region: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  /**
   * The IP families the cluster's pods and Services use, as Service.spec.ipFamilies: what the relay
   * listens on and tunnels over, what every component's HTTP server binds. Unset: IPv4, as before.
   */
  ipFamilies: z
    .array(z.enum(IP_FAMILIES))
    .min(1)
    .max(2)
    .refine((families) => new Set(families).size === families.length, { message: 'must not repeat a family' })
    .optional(),
  routingKeys: z.object({
    secretName: z.string().min(1),
    key: z.string().min(1).default('keys.yaml'),
  }),
  relay: z
    .object({
      replicas: z.number().int().min(0).default(2),
      port: port.default(3478),
      serviceType: z.enum(['LoadBalancer', 'NodePort']).default('LoadBalancer'),
      nodePort: nodePort.optional(),
      publicAddresses: z.array(addressText).default([]),
      /**
       * ICE-TCP for callers whose network blocks UDP (docs/reaching-the-edge.md): the Service's TCP
       * port `port`, to the pods' TCP listener on the relay port (a number above 1024, so the pods need
       * no capability to bind it).
       */
      tcp: z
        .object({
          enabled: z.boolean().default(true),
          port: port.default(443),
          nodePort: nodePort.optional(),
        })
        .prefault({}),
      resources: opaqueObject.optional(),
    })
    .prefault({}),
  signaling: z
    .object({
      replicas: z.number().int().min(0).default(2),
      port: port.default(8080),
      serviceType: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP'),
      nodePort: nodePort.optional(),
      authSecretName: z.string().min(1).optional(),
    })
    .prefault({}),
  redis: z
    .object({ url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://') })
    .optional(),
  peers: z
    .array(
      z.object({
        clusterId: z.number().int().min(0).max(0xffff),
        region: z.string().min(1).optional(),
        relays: z.array(addressText).min(1),
      }),
    )
    .default([]),
  /** Edge relays (IPs or CIDRs) whose tunnel traffic this cluster's relays accept. */
  edgeRelays: z.array(z.string().min(1)).default([]),
  /** The credential signaling and the operator call transceivers' internal API with. */
  transceiverApi: z.object({ secretName: z.string().min(1).optional() }).prefault({}),
  /** The NetworkPolicy the operator keeps on the transceiver pods. */
  networkPolicy: z
    .object({
      enabled: z.boolean().default(true),
      /** More peers (NetworkPolicyPeer: namespaceSelector and/or podSelector) allowed to the API port. */
      metricsFrom: z.array(networkPolicyPeer).default([]),
    })
    .prefault({}),
});
export type VoiceEdgeClusterSpec = z.output<typeof VoiceEdgeClusterSpecSchema>;

export interface VoiceEdgeClusterStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  routingTableGeneration?: number;
  transceivers?: number;
  relayAddresses?: string[];
}

export interface VoiceEdgeCluster {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: VoiceEdgeClusterSpec;
  status?: VoiceEdgeClusterStatus;
}

// --- TransceiverPool ---

export const SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
/** backend.sampleRate when left out with the voice-edge protocol. */
export const DEFAULT_SAMPLE_RATE = 48000;
/** The only rate of the twilio-media-streams protocol (μ-law). */
const TWILIO_SAMPLE_RATE = TWILIO_MEDIA_FORMAT.sampleRate;

export const TransceiverPoolSpecSchema = z
  .object({
    clusterName: z.string().min(1),
    replicas: z.number().int().min(0).default(1),
    capacityPerPod: z.number().int().min(1).max(10000).default(50),
    backend: z
      .object({
        url: z.string().regex(/^wss?:\/\//, 'must start with ws:// or wss://'),
        protocol: z.enum(BACKEND_PROTOCOLS).default('voice-edge'),
        // No default in the CRD: it depends on the protocol (see the transform below).
        sampleRate: z
          .number()
          .refine((rate) => (SAMPLE_RATES as readonly number[]).includes(rate), {
            message: `must be one of ${SAMPLE_RATES.join(', ')}`,
          })
          .optional(),
        accountSid: z
          .string()
          .regex(ACCOUNT_SID, 'must be AC followed by 32 lowercase hex digits')
          .optional(),
      })
      .superRefine((backend, context) => {
        if (
          backend.protocol === 'twilio-media-streams' &&
          backend.sampleRate !== undefined &&
          backend.sampleRate !== TWILIO_SAMPLE_RATE
        ) {
          context.addIssue({
            code: 'custom',
            path: ['sampleRate'],
            message: 'must be 8000 or left out with protocol twilio-media-streams (8000 Hz μ-law)',
          });
        }
      })
      // What the transceiver is told: 48000 by default with voice-edge, always 8000 with Twilio.
      .transform((backend) => ({
        ...backend,
        sampleRate:
          backend.sampleRate ??
          (backend.protocol === 'twilio-media-streams' ? TWILIO_SAMPLE_RATE : DEFAULT_SAMPLE_RATE),
      })),
    audio: z
      .object({
        opusApplication: z.enum(OPUS_APPLICATIONS).default(DEFAULT_OPUS_APPLICATION),
        opusComplexity: z.number().int().min(0).max(10).optional(),
        maxQueueSeconds: z.number().min(1).max(600).default(20),
        callerDtx: z.boolean().default(true),
      })
      .prefault({})
      // What the transceiver is told: the complexity measured for the application unless one is set.
      .transform((audio) => ({
        ...audio,
        opusComplexity: audio.opusComplexity ?? OPUS_APPLICATION_DEFAULTS[audio.opusApplication].complexity,
      })),
    autoscaling: z
      .object({
        enabled: z.boolean().default(false),
        minReplicas: z.number().int().min(0).default(1),
        maxReplicas: z.number().int().min(0).default(10),
        targetUtilizationPercent: z.number().int().min(1).max(100).default(70),
        scaleDownStabilizationSeconds: z.number().int().min(0).max(3600).default(300),
      })
      .prefault({}),
    drainTimeoutSeconds: z.number().int().min(0).max(86400).default(3600),
    template: z
      .object({
        image: z.string().min(1).optional(),
        imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
        resources: opaqueObject.optional(),
        nodeSelector: z.record(z.string(), z.string()).optional(),
        tolerations: z.array(opaqueObject).optional(),
        labels: z.record(z.string(), z.string()).optional(),
        annotations: z.record(z.string(), z.string()).optional(),
        env: z.array(z.object({ name: z.string().min(1), value: z.string().default('') })).optional(),
        priorityClassName: z.string().min(1).optional(),
      })
      .prefault({}),
  })
  .superRefine((spec, context) => {
    if (spec.autoscaling.minReplicas > spec.autoscaling.maxReplicas) {
      context.addIssue({
        code: 'custom',
        path: ['autoscaling', 'minReplicas'],
        message: `must not exceed maxReplicas (${spec.autoscaling.maxReplicas})`,
      });
    }
  });
export type TransceiverPoolSpec = z.output<typeof TransceiverPoolSpecSchema>;

export interface PoolTransceiverStatus {
  id: number;
  pod: string;
  state: 'active' | 'draining';
  ready: boolean;
  sessions: number;
}

export interface TransceiverPoolStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  replicas?: number;
  readyReplicas?: number;
  drainingReplicas?: number;
  sessions?: number;
  capacity?: number;
  selector?: string;
  transceivers?: PoolTransceiverStatus[];
}

export interface TransceiverPool {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: TransceiverPoolSpec;
  status?: TransceiverPoolStatus;
}

// --- reading objects from the API server ---

const StatusSchema = z.record(z.string(), z.unknown()).optional();

export type ReadResult<T> = { ok: true; object: T } | { ok: false; error: string };

function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

function readObject<S extends z.ZodType>(
  input: unknown,
  kind: string,
  specSchema: S,
): ReadResult<{
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: z.output<S>;
  status?: unknown;
}> {
  const envelope = z
    .object({ metadata: ObjectMetaSchema, spec: z.unknown(), status: StatusSchema })
    .safeParse(input);
  if (!envelope.success) return { ok: false, error: `${kind}: ${formatZodError(envelope.error)}` };
  const spec = specSchema.safeParse(envelope.data.spec ?? {});
  if (!spec.success) return { ok: false, error: `spec.${formatZodError(spec.error)}` };
  return {
    ok: true,
    object: {
      apiVersion: API_VERSION,
      kind,
      metadata: envelope.data.metadata,
      spec: spec.data,
      status: envelope.data.status,
    },
  };
}

/** A VoiceEdgeCluster from the API server, defaults filled; an error names the bad field. */
export function readVoiceEdgeCluster(input: unknown): ReadResult<VoiceEdgeCluster> {
  const result = readObject(input, CLUSTER_KIND, VoiceEdgeClusterSpecSchema);
  if (!result.ok) return result;
  return { ok: true, object: { ...result.object, status: result.object.status as VoiceEdgeClusterStatus } };
}

/** A TransceiverPool from the API server, defaults filled; an error names the bad field. */
export function readTransceiverPool(input: unknown): ReadResult<TransceiverPool> {
  const result = readObject(input, POOL_KIND, TransceiverPoolSpecSchema);
  if (!result.ok) return result;
  return { ok: true, object: { ...result.object, status: result.object.status as TransceiverPoolStatus } };
}

/** The controller owner reference that makes `owner` the owner of what the operator creates for it. */
export function controllerReference(owner: { apiVersion?: string; kind: string; metadata: ObjectMeta }) {
  return {
    apiVersion: owner.apiVersion ?? API_VERSION,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Labels every object belonging to one VoiceEdgeCluster carries. */
export function clusterLabels(cluster: string, component: string): Record<string, string> {
  return {
    [LABEL_NAME]: NAME_VALUE,
    [LABEL_INSTANCE]: cluster,
    [LABEL_COMPONENT]: component,
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
  };
}

/** The label selector of a pool's transceiver pods (status.selector, for the scale subresource). */
export function poolSelector(cluster: string, pool: string): string {
  return [
    `${LABEL_NAME}=${NAME_VALUE}`,
    `${LABEL_INSTANCE}=${cluster}`,
    `${LABEL_COMPONENT}=${COMPONENT.transceiver}`,
    `${LABEL_POOL}=${pool}`,
  ].join(',');
}

/** The transceiver ID a pod's label carries, or undefined if it carries none that is valid. */
export function transceiverIdOf(labels: Record<string, string> | undefined): number | undefined {
  const text = labels?.[LABEL_TRANSCEIVER_ID];
  if (text === undefined || !/^[1-9][0-9]{0,9}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= 0xffffffff ? id : undefined;
}
