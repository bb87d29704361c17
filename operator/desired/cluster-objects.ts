// The objects a VoiceEdgeCluster owns besides its routing table and ID ledger: the relay
// (Deployment, UDP Service, PodDisruptionBudget), signaling (Deployment, Service) and the
// ServiceAccount, Role and RoleBinding relays, signaling and transceivers use to read the routing
// table, and the transceivers' NetworkPolicy. Pure: cluster spec in, objects out, applied as they
// are with server-side apply.
import type {
  V1Deployment,
  V1EnvVar,
  V1PodDisruptionBudget,
  V1ResourceRequirements,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import {
  ANNOTATION_API_TOKENS_HASH,
  API_TOKENS_KEY,
  COMPONENT,
  clusterLabels,
  RELAY_HTTP_PORT,
  relayName,
  routingConfigMapName,
  routingReaderName,
  SIGNALING_OPS_PORT,
  signalingName,
  transceiverApiSecretName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { relayTcpAddresses } from '../relay-addresses.ts';
import {
  type DesiredObject,
  env,
  fieldEnv,
  ownedMeta,
  secretEnv,
  selectorLabels,
  yamlString,
} from './common.ts';
import { hostEnvValue, httpHost, relayListen, relayTunnelBindV6, serviceIpFamilies } from './ip-families.ts';
import { type OperatorIdentity, transceiverNetworkPolicy } from './network-policy.ts';

export interface ClusterObjectsInput {
  readonly cluster: VoiceEdgeCluster;
  /** The image when the cluster names none (the operator's configuration). */
  readonly defaultImage: string;
  /** The public relay addresses answers advertise (spec.relay.publicAddresses or the Service's). */
  readonly relayAddresses: readonly string[];
  /**
   * Hash of the internal-API credential's tokens (transceiver-api-secret.ts), in the signaling pod
   * template so a rotation rolls signaling; undefined while the credential is unreadable.
   */
  readonly apiTokensHash: string | undefined;
  /** The operator's own pods, allowed to the transceivers' API by the NetworkPolicy. */
  readonly operator: OperatorIdentity;
}

export function clusterImage(cluster: VoiceEdgeCluster, defaultImage: string): string {
  return cluster.spec.image ?? defaultImage;
}

/**
 * Every object, in the order they are applied (what a pod needs before the pod). The signaling
 * Deployment only while the internal-API credential is usable: its pods could not start without it,
 * and the one in place is left as it is.
 */
export function desiredClusterObjects(input: ClusterObjectsInput): DesiredObject[] {
  return [
    routingReaderServiceAccount(input),
    routingReaderRole(input),
    routingReaderRoleBinding(input),
    ...(input.cluster.spec.networkPolicy.enabled
      ? [transceiverNetworkPolicy(input.cluster, input.operator)]
      : []),
    relayService(input),
    relayDisruptionBudget(input),
    relayDeployment(input),
    signalingService(input),
    ...(input.apiTokensHash === undefined ? [] : [signalingDeployment(input)]),
  ];
}

function names(input: ClusterObjectsInput) {
  const name = input.cluster.metadata.name;
  return { cluster: name, namespace: input.cluster.metadata.namespace ?? 'default' };
}

function routingReaderServiceAccount(input: ClusterObjectsInput): DesiredObject & V1ServiceAccount {
  const { cluster } = names(input);
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: ownedMeta(routingReaderName(cluster), COMPONENT.routingTable, input.cluster),
  };
}

/** Read access to this cluster's routing table and nothing else (list/watch by metadata.name). */
function routingReaderRole(input: ClusterObjectsInput): DesiredObject & V1Role {
  const { cluster } = names(input);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: ownedMeta(routingReaderName(cluster), COMPONENT.routingTable, input.cluster),
    rules: [
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: [routingConfigMapName(cluster)],
        verbs: ['get', 'list', 'watch'],
      },
    ],
  };
}

function routingReaderRoleBinding(input: ClusterObjectsInput): DesiredObject & V1RoleBinding {
  const { cluster, namespace } = names(input);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: ownedMeta(routingReaderName(cluster), COMPONENT.routingTable, input.cluster),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: routingReaderName(cluster) },
    subjects: [{ kind: 'ServiceAccount', name: routingReaderName(cluster), namespace }],
  };
}

/** How relays, signaling and transceivers find the routing table (they watch the ConfigMap). */
export function routingTableEnv(prefix: string, cluster: string, namespace: string): V1EnvVar[] {
  return [
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    env(`${prefix}ROUTING_TABLE__CONFIG_MAP__NAME`, routingConfigMapName(cluster)),
    env(`${prefix}ROUTING_TABLE__CONFIG_MAP__NAMESPACE`, namespace),
  ];
}

export function relayDeployment(input: ClusterObjectsInput): DesiredObject & V1Deployment {
  const { cluster, namespace } = names(input);
  const spec = input.cluster.spec;
  const labels = selectorLabels(cluster, COMPONENT.relay);
  const prefix = 'VOICE_EDGE_RELAY_';
  // The pods carry managed-by too (the selector cannot: it is immutable): the operator watches
  // them and publishes their IPs as the routing table's relaySources.
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: ownedMeta(relayName(cluster), COMPONENT.relay, input.cluster),
    spec: {
      replicas: spec.relay.replicas,
      selector: { matchLabels: labels },
      // A relay that goes away costs calls a moment of silence at most (Redis or the next consent
      // check moves them), but never take one away before its replacement is ready.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: clusterLabels(cluster, COMPONENT.relay) },
        spec: {
          serviceAccountName: routingReaderName(cluster),
          // Service links would put <SERVICE>_PORT variables into the environment, and a Service
          // named voice-edge-relay would then set VOICE_EDGE_RELAY_* configuration fields.
          enableServiceLinks: false,
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: labels },
            },
          ],
          containers: [
            {
              name: 'relay',
              image: clusterImage(input.cluster, input.defaultImage),
              args: ['relay'],
              ports: [
                { name: 'relay', containerPort: spec.relay.port, protocol: 'UDP' },
                // ICE-TCP on the same number: above 1024, so no capability is needed to bind it.
                ...(spec.relay.tcp.enabled
                  ? [{ name: 'relay-tcp', containerPort: spec.relay.port, protocol: 'TCP' }]
                  : []),
                { name: 'http', containerPort: RELAY_HTTP_PORT, protocol: 'TCP' },
              ],
              env: [
                ...routingTableEnv(prefix, cluster, namespace),
                env(`${prefix}CLUSTER_ID`, String(spec.clusterId)),
                env(`${prefix}LISTEN`, JSON.stringify(relayListen(input.cluster))),
                ...(spec.relay.tcp.enabled
                  ? [env(`${prefix}TCP__LISTEN`, JSON.stringify(relayListen(input.cluster)))]
                  : []),
                ...tunnelBindV6Env(prefix, relayTunnelBindV6(input.cluster)),
                env(`${prefix}HTTP__HOST`, hostEnvValue(httpHost(input.cluster))),
                env(`${prefix}HTTP__PORT`, String(RELAY_HTTP_PORT)),
                ...(spec.redis ? [env(`${prefix}REDIS__URL`, yamlString(spec.redis.url))] : []),
                secretEnv('VOICE_EDGE_ROUTING_KEYS', spec.routingKeys.secretName, spec.routingKeys.key),
              ],
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http' },
                periodSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              ...(spec.relay.resources ? { resources: spec.relay.resources as V1ResourceRequirements } : {}),
            },
          ],
        },
      },
    },
  };
}

export function relayService(input: ClusterObjectsInput): DesiredObject & V1Service {
  const { cluster } = names(input);
  const relay = input.cluster.spec.relay;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(relayName(cluster), COMPONENT.relay, input.cluster),
    spec: {
      type: relay.serviceType,
      // Keeps the client's address (the relay needs it) and sends packets only to relays on the
      // node that received them, so a flow does not hop between nodes.
      externalTrafficPolicy: 'Local',
      ...serviceIpFamilies(input.cluster),
      selector: selectorLabels(cluster, COMPONENT.relay),
      ports: [
        {
          name: 'relay',
          protocol: 'UDP',
          port: relay.port,
          targetPort: relay.port,
          ...(relay.nodePort === undefined ? {} : { nodePort: relay.nodePort }),
        },
        // Both protocols on one address: answers name the same IP for UDP and TCP.
        ...(relay.tcp.enabled
          ? [
              {
                name: 'relay-tcp',
                protocol: 'TCP',
                port: relay.tcp.port,
                targetPort: relay.port,
                ...(relay.tcp.nodePort === undefined ? {} : { nodePort: relay.tcp.nodePort }),
              },
            ]
          : []),
      ],
    },
  };
}

function relayDisruptionBudget(input: ClusterObjectsInput): DesiredObject & V1PodDisruptionBudget {
  const { cluster } = names(input);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMeta(relayName(cluster), COMPONENT.relay, input.cluster),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(cluster, COMPONENT.relay) } },
  };
}

export function signalingDeployment(input: ClusterObjectsInput): DesiredObject & V1Deployment {
  const { cluster, namespace } = names(input);
  const signaling = input.cluster.spec.signaling;
  const labels = selectorLabels(cluster, COMPONENT.signaling);
  const prefix = 'VOICE_EDGE_SIGNALING_';
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: ownedMeta(signalingName(cluster), COMPONENT.signaling, input.cluster),
    spec: {
      replicas: signaling.replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          // A rotated internal-API credential rolls signaling (it reads the tokens when it starts).
          ...(input.apiTokensHash === undefined
            ? {}
            : { annotations: { [ANNOTATION_API_TOKENS_HASH]: input.apiTokensHash } }),
        },
        spec: {
          serviceAccountName: routingReaderName(cluster),
          enableServiceLinks: false,
          containers: [
            {
              name: 'signaling',
              image: clusterImage(input.cluster, input.defaultImage),
              args: ['signaling'],
              ports: [
                { name: 'http', containerPort: signaling.port, protocol: 'TCP' },
                { name: 'ops', containerPort: SIGNALING_OPS_PORT, protocol: 'TCP' },
              ],
              env: [
                ...routingTableEnv(prefix, cluster, namespace),
                env(`${prefix}RELAYS`, JSON.stringify(input.relayAddresses)),
                ...tcpRelaysEnv(prefix, input.cluster, input.relayAddresses),
                env(`${prefix}HTTP__HOST`, hostEnvValue(httpHost(input.cluster))),
                env(`${prefix}HTTP__PORT`, String(signaling.port)),
                env(`${prefix}OPS__HOST`, hostEnvValue(httpHost(input.cluster))),
                env(`${prefix}OPS__PORT`, String(SIGNALING_OPS_PORT)),
                ...(signaling.authSecretName
                  ? [secretEnv(`${prefix}AUTH__TOKENS`, signaling.authSecretName, 'tokens')]
                  : []),
                secretEnv(
                  `${prefix}TRANSCEIVERS__API_TOKENS`,
                  transceiverApiSecretName(input.cluster),
                  API_TOKENS_KEY,
                ),
              ],
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'ops' },
                periodSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'ops' },
                periodSeconds: 10,
                failureThreshold: 3,
              },
            },
          ],
        },
      },
    },
  };
}

export function signalingService(input: ClusterObjectsInput): DesiredObject & V1Service {
  const { cluster } = names(input);
  const signaling = input.cluster.spec.signaling;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(signalingName(cluster), COMPONENT.signaling, input.cluster),
    spec: {
      type: signaling.serviceType,
      ...serviceIpFamilies(input.cluster),
      selector: selectorLabels(cluster, COMPONENT.signaling),
      ports: [
        {
          name: 'http',
          protocol: 'TCP',
          port: signaling.port,
          targetPort: 'http',
          ...(signaling.nodePort === undefined || signaling.serviceType === 'ClusterIP'
            ? {}
            : { nodePort: signaling.nodePort }),
        },
      ],
    },
  };
}

/** `tunnel.bindV6` for an IPv6 cluster; nothing otherwise (the relay then has no IPv6 tunnel socket). */
function tunnelBindV6Env(prefix: string, bindV6: string | undefined): V1EnvVar[] {
  return bindV6 === undefined ? [] : [env(`${prefix}TUNNEL__BIND_V6`, hostEnvValue(bindV6))];
}

/** `<prefix>TCP_RELAYS` when the relays have ICE-TCP addresses (none: the variable is left out). */
export function tcpRelaysEnv(
  prefix: string,
  cluster: VoiceEdgeCluster,
  relayAddresses: readonly string[],
): V1EnvVar[] {
  const tcp = relayTcpAddresses(cluster, relayAddresses);
  return tcp.length === 0 ? [] : [env(`${prefix}TCP_RELAYS`, JSON.stringify(tcp))];
}
