// The NetworkPolicy a VoiceEdgeCluster keeps on its transceiver pods: the tunnel port (UDP) only
// from the cluster's relay pods, the internal API (TCP) only from its signaling pods, the operator's
// pods and the peers of spec.networkPolicy.metricsFrom (Prometheus). Nothing else reaches them;
// their own traffic out is not restricted. Relay and signaling pods are not selected: their ports
// stay open. Pure. It takes effect only where the CNI enforces NetworkPolicy (docs/kubernetes.md).
import type { V1LabelSelector, V1NetworkPolicyPort, V1ObjectMeta } from '@kubernetes/client-node';
import {
  COMPONENT,
  TRANSCEIVER_API_PORT,
  TRANSCEIVER_TUNNEL_PORT,
  transceiverPolicyName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { ownedMeta, selectorLabels } from './common.ts';

/** A NetworkPolicy as the API server reads it (client-node's model names `from` `_from`). */
export interface NetworkPolicyPeer {
  namespaceSelector?: V1LabelSelector;
  podSelector?: V1LabelSelector;
}
export interface NetworkPolicyObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: {
    podSelector: V1LabelSelector;
    policyTypes: string[];
    ingress: { from: NetworkPolicyPeer[]; ports: V1NetworkPolicyPort[] }[];
  };
}

/** Where the operator's own pods are: they call every transceiver's /status and /drain. */
export interface OperatorIdentity {
  /** The operator's namespace; undefined: its pod labels in any namespace. */
  readonly namespace: string | undefined;
  readonly podLabels: Readonly<Record<string, string>>;
}

/** The label every namespace carries with its own name (Kubernetes 1.22+). */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function operatorPeer(operator: OperatorIdentity): NetworkPolicyPeer {
  return {
    namespaceSelector:
      operator.namespace === undefined ? {} : { matchLabels: { [NAMESPACE_NAME_LABEL]: operator.namespace } },
    podSelector: { matchLabels: { ...operator.podLabels } },
  };
}

export function transceiverNetworkPolicy(
  cluster: VoiceEdgeCluster,
  operator: OperatorIdentity,
): NetworkPolicyObject {
  const name = cluster.metadata.name;
  const api: V1NetworkPolicyPort = { protocol: 'TCP', port: TRANSCEIVER_API_PORT };
  const metricsFrom = cluster.spec.networkPolicy.metricsFrom;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMeta(transceiverPolicyName(name), COMPONENT.transceiver, cluster),
    spec: {
      podSelector: { matchLabels: selectorLabels(name, COMPONENT.transceiver) },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: selectorLabels(name, COMPONENT.relay) } }],
          ports: [{ protocol: 'UDP', port: TRANSCEIVER_TUNNEL_PORT }],
        },
        {
          from: [
            { podSelector: { matchLabels: selectorLabels(name, COMPONENT.signaling) } },
            operatorPeer(operator),
          ],
          ports: [api],
        },
        ...(metricsFrom.length === 0
          ? []
          : [{ from: metricsFrom.map((peer) => ({ ...peer }) as NetworkPolicyPeer), ports: [api] }]),
      ],
    },
  };
}
