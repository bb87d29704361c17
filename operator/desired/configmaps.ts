// The two ConfigMaps a VoiceEdgeCluster owns: the published routing table and the transceiver ID
// ledger.
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  COMPONENT,
  LEDGER_KEY,
  ledgerConfigMapName,
  ROUTING_TABLE_KEY,
  routingConfigMapName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { type DesiredObject, ownedMeta } from './common.ts';

/**
 * The routing table ConfigMap. With `resourceVersion` the apply succeeds only if nobody wrote the
 * ConfigMap since it was read, so two writers can never publish the same generation twice.
 */
export function routingConfigMap(
  cluster: VoiceEdgeCluster,
  document: unknown,
  resourceVersion: string | undefined,
): DesiredObject & V1ConfigMap {
  const name = cluster.metadata.name;
  const metadata = ownedMeta(routingConfigMapName(name), COMPONENT.routingTable, cluster);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: resourceVersion === undefined ? metadata : { ...metadata, resourceVersion },
    data: { [ROUTING_TABLE_KEY]: JSON.stringify(document) },
  };
}

export function ledgerConfigMap(cluster: VoiceEdgeCluster, next: number): DesiredObject & V1ConfigMap {
  const name = cluster.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(ledgerConfigMapName(name), COMPONENT.transceiverIds, cluster),
    data: { [LEDGER_KEY]: String(next) },
  };
}
