// A transceiver pod (the operator owns them directly, one per transceiver ID, like Agones owns game
// servers): its ID, cluster, backend and relays reach it as VOICE_EDGE_TRANSCEIVER_* variables, the
// internal-API tokens from the cluster's credential Secret; it watches the routing table (its
// relaySources say which relays may send it tunnel datagrams). The template hash covers everything
// but the ID, the credential's hash included, so a changed pool template or a rotated credential
// is noticed per pod.
import { createHash } from 'node:crypto';
import type {
  V1EnvVar,
  V1OwnerReference,
  V1Pod,
  V1ResourceRequirements,
  V1Toleration,
} from '@kubernetes/client-node';
import {
  ANNOTATION_API_TOKENS_HASH,
  ANNOTATION_TEMPLATE_HASH,
  API_TOKENS_KEY,
  COMPONENT,
  clusterLabels,
  controllerReference,
  LABEL_POOL,
  LABEL_TRANSCEIVER_ID,
  routingReaderName,
  TRANSCEIVER_API_PORT,
  TRANSCEIVER_TUNNEL_PORT,
  type TransceiverPool,
  transceiverApiSecretName,
  transceiverPodName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { clusterImage, routingTableEnv, tcpRelaysEnv } from './cluster-objects.ts';
import { type DesiredObject, env, fieldEnv, secretEnv, yamlString } from './common.ts';
import { hostEnvValue, httpHost } from './ip-families.ts';

export interface TransceiverPodInput {
  readonly pool: TransceiverPool;
  readonly cluster: VoiceEdgeCluster;
  readonly defaultImage: string;
  readonly relayAddresses: readonly string[];
  /** Hash of the internal-API credential's tokens (transceiver-api-secret.ts). */
  readonly apiTokensHash: string;
}

const PREFIX = 'VOICE_EDGE_TRANSCEIVER_';
const ID_VARIABLE = `${PREFIX}TRANSCEIVER_ID`;

export function transceiverPod(input: TransceiverPodInput, id: number): DesiredObject & V1Pod {
  const pod = podWithoutHash(input, id);
  pod.metadata.annotations = { ...pod.metadata.annotations, [ANNOTATION_TEMPLATE_HASH]: templateHash(input) };
  return pod;
}

/** Hash of the pod as built for any ID: pods with equal hashes differ only in their ID. */
export function templateHash(input: TransceiverPodInput): string {
  const pod = podWithoutHash(input, 0);
  return createHash('sha256').update(JSON.stringify(pod)).digest('hex').slice(0, 16);
}

function podWithoutHash(input: TransceiverPodInput, id: number) {
  const { pool, cluster } = input;
  const spec = pool.spec;
  const template = spec.template;
  const namespace = pool.metadata.namespace ?? 'default';
  const ours: V1EnvVar[] = [
    fieldEnv('POD_IP', 'status.podIP'),
    ...routingTableEnv(PREFIX, cluster.metadata.name, namespace),
    env(`${PREFIX}CLUSTER_ID`, String(cluster.spec.clusterId)),
    env(ID_VARIABLE, String(id)),
    // The pod's IP and the port apart: `$(POD_IP):7000` would be `fd00::9:7000` for an IPv6 pod, an
    // address with no port (Kubernetes cannot add the brackets). The routing table names the same
    // address (observed-transceiver-pod.ts: tunnelAddress).
    env(`${PREFIX}TUNNEL__HOST`, '$(POD_IP)'),
    env(`${PREFIX}TUNNEL__PORT`, String(TRANSCEIVER_TUNNEL_PORT)),
    env(`${PREFIX}API__HOST`, hostEnvValue(httpHost(cluster))),
    env(`${PREFIX}API__PORT`, String(TRANSCEIVER_API_PORT)),
    env(`${PREFIX}RELAYS`, JSON.stringify(input.relayAddresses)),
    ...tcpRelaysEnv(PREFIX, cluster, input.relayAddresses),
    env(`${PREFIX}BACKEND__URL`, yamlString(spec.backend.url)),
    env(`${PREFIX}BACKEND__PROTOCOL`, spec.backend.protocol),
    // 8000 with twilio-media-streams (the API refuses another rate there), the pool's rate otherwise.
    env(`${PREFIX}BACKEND__SAMPLE_RATE`, String(spec.backend.sampleRate)),
    ...(spec.backend.accountSid ? [env(`${PREFIX}BACKEND__ACCOUNT_SID`, spec.backend.accountSid)] : []),
    env(`${PREFIX}AUDIO__OPUS_APPLICATION`, spec.audio.opusApplication),
    env(`${PREFIX}AUDIO__OPUS_COMPLEXITY`, String(spec.audio.opusComplexity)),
    env(`${PREFIX}AUDIO__MAX_QUEUE_SECONDS`, String(spec.audio.maxQueueSeconds)),
    env(`${PREFIX}AUDIO__CALLER_DTX`, String(spec.audio.callerDtx)),
    env(`${PREFIX}SESSIONS__MAX`, String(spec.capacityPerPod)),
    secretEnv('VOICE_EDGE_ROUTING_KEYS', cluster.spec.routingKeys.secretName, cluster.spec.routingKeys.key),
    secretEnv(`${PREFIX}API__TOKENS`, transceiverApiSecretName(cluster), API_TOKENS_KEY),
  ];
  // The pool's own variables come after ours; one that would replace ours is left out.
  const reserved = new Set(ours.map((variable) => variable.name));
  const extra = (template.env ?? []).filter((variable) => !reserved.has(variable.name));
  const name = id === 0 ? `${pool.metadata.name}-` : transceiverPodName(pool.metadata.name, id);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: {
        ...template.labels,
        ...clusterLabels(cluster.metadata.name, COMPONENT.transceiver),
        [LABEL_POOL]: pool.metadata.name,
        [LABEL_TRANSCEIVER_ID]: String(id),
      },
      annotations: {
        ...template.annotations,
        [ANNOTATION_API_TOKENS_HASH]: input.apiTokensHash,
      } as Record<string, string>,
      ownerReferences: [controllerReference(pool) as V1OwnerReference],
    },
    spec: {
      restartPolicy: 'Always',
      enableServiceLinks: false,
      // The token lets the transceiver watch the routing-table ConfigMap, which is all its
      // ServiceAccount may read (the cluster's routing reader: configmaps get/list/watch of that one).
      serviceAccountName: routingReaderName(cluster.metadata.name),
      automountServiceAccountToken: true,
      // The transceiver's own shutdown grace (30 s by default) plus a margin.
      terminationGracePeriodSeconds: 40,
      ...(template.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
      ...(template.tolerations ? { tolerations: template.tolerations as V1Toleration[] } : {}),
      ...(template.priorityClassName ? { priorityClassName: template.priorityClassName } : {}),
      containers: [
        {
          name: 'transceiver',
          image: template.image ?? clusterImage(cluster, input.defaultImage),
          ...(template.imagePullPolicy ? { imagePullPolicy: template.imagePullPolicy } : {}),
          args: ['transceiver'],
          ports: [
            { name: 'tunnel', containerPort: TRANSCEIVER_TUNNEL_PORT, protocol: 'UDP' },
            { name: 'api', containerPort: TRANSCEIVER_API_PORT, protocol: 'TCP' },
          ],
          env: [...ours, ...extra],
          readinessProbe: {
            httpGet: { path: '/healthz', port: 'api' },
            periodSeconds: 2,
            failureThreshold: 2,
          },
          ...(template.resources ? { resources: template.resources as V1ResourceRequirements } : {}),
        },
      ],
    },
  } satisfies V1Pod;
}
