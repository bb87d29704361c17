// What a reconcile works with: the caches (informers), the client for writes, and the state the
// leader keeps for one leadership term. Everything here is rebuilt when leadership is (re)gained,
// so nothing a previous term believed survives into the next.
import type { Logger } from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Informer, KubeObject } from '../../kube/informer.ts';
import type { RoutingTable } from '../../protocol/routing-table.ts';
import {
  COMPONENT,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_POOL,
  ROUTING_TABLE_KEY,
  routingConfigMapName,
} from '../api/v1alpha1.ts';
import type { Recommendation } from '../autoscaler.ts';
import type { CrashPoint, OperatorConfig } from '../config.ts';
import type { OperatorIdentity } from '../desired/network-policy.ts';
import type { ApiCredential } from '../desired/transceiver-api-secret.ts';
import type { PodExpectations } from '../expectations.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { type ObservedTransceiverPod, readTransceiverPod } from '../observed-transceiver-pod.ts';
import { readPublishedTable } from '../routing-table-builder.ts';
import type { StatusPoller } from '../status-poller.ts';

export interface Caches {
  readonly clusters: Informer;
  readonly pools: Informer;
  readonly pods: Informer;
  readonly configMaps: Informer;
  readonly deployments: Informer;
  readonly services: Informer;
}

export interface ReconcileContext {
  readonly client: KubeClient;
  readonly caches: Caches;
  readonly recorder: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly config: OperatorConfig;
  readonly logger: Logger;
  /** Aborts when this leadership term ends: every write takes it. */
  readonly signal: AbortSignal;
  readonly poller: StatusPoller;
  readonly expectations: PodExpectations;
  /** Autoscaler recommendations per pool key. */
  readonly recommendations: Map<string, readonly Recommendation[]>;
  /** Owned objects applied this term: key → hash of what was applied, when, and the version it made. */
  readonly applied: Map<string, { hash: string; at: number; resourceVersion: string | undefined }>;
  /** The last routing table this term published per cluster key (the cache may lag behind it). */
  readonly published: Map<string, { generation: number; resourceVersion: string; table: RoutingTable }>;
  /**
   * IDs this term allocated for pods whose creation the API server refused outright, per cluster
   * key: no pod carries them and the ledger is past them, so this term may still use them.
   */
  readonly spareIds: Map<string, number[]>;
  /** Each cluster's internal-API credential as last read this term, per cluster key. */
  readonly credentials: Map<string, ApiCredential>;
  /** The operator's own pods (the transceivers' NetworkPolicy lets them reach the API port). */
  readonly operator: OperatorIdentity;
  /** Reconcile every pool that names this cluster (its credential changed). */
  readonly enqueuePoolsOf: (namespace: string, cluster: string) => void;
  readonly crash: (point: CrashPoint) => void;
  readonly now: () => number;
}

export const clusterKey = (namespace: string, name: string) => `vec:${namespace}/${name}`;
export const poolKey = (namespace: string, name: string) => `tp:${namespace}/${name}`;

export function parseKey(key: string): { kind: 'vec' | 'tp'; namespace: string; name: string } | undefined {
  const match = /^(vec|tp):([^/]*)\/(.+)$/.exec(key);
  return match ? { kind: match[1] as 'vec' | 'tp', namespace: match[2]!, name: match[3]! } : undefined;
}

const podViews = new WeakMap<object, ObservedTransceiverPod | null>();

/** The cached pod as a transceiver (memoised per cached object). */
export function podView(object: KubeObject): ObservedTransceiverPod | undefined {
  let view = podViews.get(object);
  if (view === undefined) {
    view = readTransceiverPod(object) ?? null;
    podViews.set(object, view);
  }
  return view ?? undefined;
}

/** The cluster's relay pods, as cached (raw: only their IPs and phase matter). */
export function relayPods(caches: Caches, namespace: string, cluster: string): KubeObject[] {
  return caches.pods.list().filter((object) => {
    const labels = object.metadata.labels;
    return (
      object.metadata.namespace === namespace &&
      labels?.[LABEL_INSTANCE] === cluster &&
      labels?.[LABEL_COMPONENT] === COMPONENT.relay
    );
  });
}

/** Every transceiver pod of one cluster (all pools), terminating ones included. */
export function clusterPods(caches: Caches, namespace: string, cluster: string): ObservedTransceiverPod[] {
  const pods: ObservedTransceiverPod[] = [];
  for (const object of caches.pods.list()) {
    const labels = object.metadata.labels;
    if (object.metadata.namespace !== namespace || labels?.[LABEL_INSTANCE] !== cluster) continue;
    if (labels?.[LABEL_COMPONENT] !== COMPONENT.transceiver) continue;
    const view = podView(object);
    if (view) pods.push(view);
  }
  return pods;
}

/** The pods one pool owns (its label and its UID as controller). */
export function poolPods(
  caches: Caches,
  namespace: string,
  pool: string,
  poolUid: string,
): ObservedTransceiverPod[] {
  const pods: ObservedTransceiverPod[] = [];
  for (const object of caches.pods.list()) {
    if (object.metadata.namespace !== namespace || object.metadata.labels?.[LABEL_POOL] !== pool) continue;
    const view = podView(object);
    if (view && view.ownerUid === poolUid) pods.push(view);
  }
  return pods;
}

const tables = new WeakMap<object, RoutingTable | null>();

/** The routing table as published (the cached ConfigMap), if readable. */
export function publishedTable(caches: Caches, namespace: string, cluster: string): RoutingTable | undefined {
  const object = caches.configMaps.get(namespace, routingConfigMapName(cluster));
  if (object === undefined) return undefined;
  let table = tables.get(object);
  if (table === undefined) {
    const data = object.data as Record<string, string> | undefined;
    table = readPublishedTable(data?.[ROUTING_TABLE_KEY]) ?? null;
    tables.set(object, table);
  }
  return table ?? undefined;
}

/** Pools (raw, as cached) that name `cluster` in `namespace`. */
export function poolsNaming(caches: Caches, namespace: string, cluster: string): KubeObject[] {
  return caches.pools
    .list()
    .filter(
      (pool) =>
        pool.metadata.namespace === namespace &&
        (pool.spec as { clusterName?: unknown })?.clusterName === cluster,
    );
}
