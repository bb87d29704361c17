// What one reconcile of a VoiceEdgeCluster decides, as pure functions of what it observed: the
// objects it owns (to apply, and the NetworkPolicy to delete when disabled), whether the ID ledger
// must be created and above which ID, the routing table to publish and the Events that report
// problems. reconcile/voice-edge-cluster.ts observes, calls these, and carries out the writes.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { transceiverPolicyName, type VoiceEdgeCluster } from './api/v1alpha1.ts';
import { desiredClusterObjects } from './desired/cluster-objects.ts';
import type { DesiredObject } from './desired/common.ts';
import { routingConfigMap } from './desired/configmaps.ts';
import type { OperatorIdentity } from './desired/network-policy.ts';
import type { ApiCredential } from './desired/transceiver-api-secret.ts';
import type { ObservedTransceiverPod } from './observed-transceiver-pod.ts';
import { buildRoutingTable, type RoutingTableResult, relaySourcesOf } from './routing-table-builder.ts';

export interface OwnedObjectsInput {
  readonly cluster: VoiceEdgeCluster;
  readonly defaultImage: string;
  readonly relayAddresses: readonly string[];
  readonly credential: ApiCredential;
  readonly operator: OperatorIdentity;
}

export interface OwnedObjectsPlan {
  /** Applied one by one; one failure does not stop the others. */
  readonly apply: readonly DesiredObject[];
  /** The transceivers' NetworkPolicy to delete (spec.networkPolicy.enabled is false), if so. */
  readonly deleteNetworkPolicy: string | undefined;
}

export function planOwnedObjects(input: OwnedObjectsInput): OwnedObjectsPlan {
  const { cluster } = input;
  return {
    apply: desiredClusterObjects({
      cluster,
      defaultImage: input.defaultImage,
      relayAddresses: input.relayAddresses,
      apiTokensHash: input.credential.ok ? input.credential.hash : undefined,
      operator: input.operator,
    }),
    deleteNetworkPolicy: cluster.spec.networkPolicy.enabled
      ? undefined
      : transceiverPolicyName(cluster.metadata.name),
  };
}

/** The routing table as this term last wrote it (the cache may lag behind). */
export interface WrittenTable {
  readonly generation: number;
  readonly resourceVersion: string;
  readonly table: RoutingTable;
}

/** What the routing table and the ledger are built from. */
export interface RoutingObservation {
  readonly cluster: VoiceEdgeCluster;
  /** Every transceiver pod of the cluster (all pools), terminating ones included. */
  readonly pods: readonly ObservedTransceiverPod[];
  /** The cluster's relay pods (their IPs are the relay sources). */
  readonly relayPods: readonly unknown[];
  /** The routing table ConfigMap as cached: its table and resourceVersion. */
  readonly cached: RoutingTable | undefined;
  readonly cachedVersion: string | undefined;
  readonly lastWritten: WrittenTable | undefined;
  readonly ledgerExists: boolean;
  /** status.routingTableGeneration, so a deleted ConfigMap does not restart at 1. */
  readonly knownGeneration: number;
}

export interface RoutingPlan {
  /** The table in force before this reconcile. */
  readonly base: RoutingTable | undefined;
  /** Set when the ledger does not exist: create it above this ID (the highest in use or listed). */
  readonly ledgerAbove: number | undefined;
  readonly result: RoutingTableResult;
  /** The ConfigMap to apply when the table changed (bound to the version it was built on). */
  readonly publish: (DesiredObject & V1ConfigMap) | undefined;
}

export function planRouting(observed: RoutingObservation): RoutingPlan {
  const { cluster, cached, lastWritten } = observed;
  // The cache may not show this term's last write yet: build on whichever is newer.
  const useWritten = lastWritten !== undefined && lastWritten.generation > (cached?.generation ?? -1);
  const base = useWritten ? lastWritten.table : cached;
  const baseVersion = useWritten ? lastWritten.resourceVersion : observed.cachedVersion;
  const ledgerAbove = observed.ledgerExists
    ? undefined
    : Math.max(
        0,
        ...observed.pods.map((pod) => pod.id),
        ...(base?.transceivers ?? []).map((entry) => entry.id),
      );
  const result = buildRoutingTable({
    clusterId: cluster.spec.clusterId,
    peers: cluster.spec.peers,
    edgeRelays: cluster.spec.edgeRelays,
    relaySources: relaySourcesOf(observed.relayPods),
    pods: observed.pods,
    published: base,
    knownGeneration: observed.knownGeneration,
  });
  const publish = result.changed
    ? routingConfigMap(cluster, result.document, base === undefined ? undefined : baseVersion)
    : undefined;
  return { base, ledgerAbove, result, publish };
}

/** The RoutingConflict Event's note, when pods were left out of the table. */
export function routingConflictNote(conflicts: readonly string[]): string | undefined {
  if (conflicts.length === 0) return undefined;
  return `pods left out of the routing table because another pod holds their ID or address: ${conflicts.join(', ')}`;
}
