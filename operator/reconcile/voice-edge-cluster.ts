// Reconciles one VoiceEdgeCluster, level-triggered: from the cached state alone, whatever event
// led here. It makes sure the internal-API credential Secret exists, applies the relay, signaling,
// RBAC and NetworkPolicy objects (server-side apply; the NetworkPolicy is deleted when disabled),
// makes sure the ID ledger exists above every ID in use, publishes the routing table built from the
// transceiver pods of all the cluster's pools and the IPs of its relay pods (generation +1 only
// when the content changes), and writes status. Each of its two jobs — the owned objects, the
// ledger and routing table — observes, plans (cluster-reconcile-plan.ts, pure) and then writes.
// Deletion waits, through the finalizer, until no TransceiverPool names the cluster.
import { createHash } from 'node:crypto';
import { isConflict, isNotFound } from '../../kube/client.ts';
import type { ReconcileOutcome } from '../../kube/work-queue.ts';
import { deleteObject, serverSideApply } from '../../kube/writes.ts';
import type { RoutingTable } from '../../protocol/routing-table.ts';
import { mergeConditions } from '../api/conditions.ts';
import {
  CLUSTER_FINALIZER,
  FIELD_MANAGER,
  ledgerConfigMapName,
  ObjectMetaSchema,
  readVoiceEdgeCluster,
  relayName,
  routingConfigMapName,
  signalingName,
  type VoiceEdgeCluster,
  type VoiceEdgeClusterStatus,
} from '../api/v1alpha1.ts';
import {
  type OwnedObjectsPlan,
  planOwnedObjects,
  planRouting,
  type RoutingObservation,
  type RoutingPlan,
  routingConflictNote,
} from '../cluster-reconcile-plan.ts';
import { clusterConditions, deploymentHealth } from '../cluster-status.ts';
import type { DesiredObject } from '../desired/common.ts';
import { relayAddresses } from '../relay-addresses.ts';
import { RESOURCES } from '../resources.ts';
import { ensureApiCredential } from './api-credential.ts';
import {
  clusterKey,
  clusterPods,
  poolsNaming,
  publishedTable,
  type ReconcileContext,
  relayPods,
} from './context.ts';
import { setFinalizer } from './finalizers.ts';
import { allocateTransceiverIds } from './id-allocator.ts';
import { writeStatus } from './status.ts';

/** Kinds the operator watches: an applied object is applied again when its cached version moved. */
const WATCHED_KINDS = new Set(['Deployment', 'Service']);

export async function reconcileCluster(
  context: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileOutcome | undefined> {
  const key = clusterKey(namespace, name);
  const raw = context.caches.clusters.get(namespace, name);
  if (raw === undefined) {
    // Gone: forget what this term remembered about it.
    context.published.delete(key);
    context.spareIds.delete(key);
    context.credentials.delete(key);
    for (const applied of context.applied.keys()) {
      if (applied.includes(`/${namespace}/${name}-`)) context.applied.delete(applied);
    }
    context.metrics.routingTableGeneration.remove({ namespace, cluster: name });
    return undefined;
  }
  const meta = ObjectMetaSchema.parse(raw.metadata);
  const subject = { apiVersion: raw.apiVersion, kind: 'VoiceEdgeCluster', metadata: meta };
  const currentStatus = (raw.status ?? {}) as VoiceEdgeClusterStatus;
  const now = new Date(context.now());
  const status = (fields: Record<string, unknown>, conditions: ReturnType<typeof clusterConditions>) =>
    writeStatus(context, RESOURCES.cluster, meta, currentStatus, {
      ...fields,
      observedGeneration: meta.generation,
      conditions: mergeConditions(currentStatus.conditions, conditions, meta.generation, now),
    });

  if (meta.deletionTimestamp !== undefined) {
    const pools = poolsNaming(context.caches, namespace, name).map((pool) => pool.metadata.name);
    if (pools.length > 0) {
      await status(
        {},
        clusterConditions({ ...emptyInput(), deleting: true, waitingForPools: pools.toSorted() }),
      );
      return undefined; // a pool going away enqueues this cluster again
    }
    await setFinalizer(context, RESOURCES.cluster, meta, CLUSTER_FINALIZER, false);
    return undefined;
  }

  const read = readVoiceEdgeCluster(raw);
  if (!read.ok) {
    context.recorder.record(subject, 'Warning', 'InvalidSpec', 'Validate', read.error);
    await status({}, clusterConditions({ ...emptyInput(), invalidSpec: read.error }));
    return undefined;
  }
  const cluster = read.object;
  await setFinalizer(context, RESOURCES.cluster, meta, CLUSTER_FINALIZER, true);

  // The internal-API credential first: signaling's pod template carries its hash.
  const credential = await ensureApiCredential(context, cluster);

  // Owned objects: observe (the relay Service's addresses), plan, apply.
  const addresses = relayAddresses(cluster, context.caches.services.get(namespace, relayName(name)));
  const owned = planOwnedObjects({
    cluster,
    defaultImage: context.config.image,
    relayAddresses: addresses,
    credential,
    operator: context.operator,
  });
  const applyErrors = await applyOwnedObjects(context, namespace, owned);

  // The ID ledger and the routing table: observe (after the applies above), plan, write.
  const routing = planRouting(observeRouting(context, cluster, currentStatus));
  if (routing.ledgerAbove !== undefined) {
    try {
      await allocateTransceiverIds(context, cluster, 0, routing.ledgerAbove);
    } catch (error) {
      if (context.signal.aborted) throw error;
      applyErrors.push(`ConfigMap/${ledgerConfigMapName(name)}: ${(error as Error).message}`);
    }
  }
  const table = await publishRoutingTable(context, namespace, name, routing);
  if (table) context.metrics.routingTableGeneration.set({ namespace, cluster: name }, table.generation);
  const conflicts = routingConflictNote(routing.result.conflicts);
  if (conflicts !== undefined) {
    context.recorder.record(subject, 'Warning', 'RoutingConflict', 'PublishRoutingTable', conflicts);
  }
  for (const error of applyErrors) context.recorder.record(subject, 'Warning', 'ApplyFailed', 'Apply', error);

  await status(
    {
      routingTableGeneration: table?.generation ?? 0,
      transceivers: table?.transceivers.length ?? 0,
      relayAddresses: addresses,
    },
    clusterConditions({
      ...emptyInput(),
      applyErrors,
      relay: deploymentHealth(context.caches.deployments.get(namespace, relayName(name)), 'relay'),
      signaling: deploymentHealth(
        context.caches.deployments.get(namespace, signalingName(name)),
        'signaling',
      ),
      relayAddresses: addresses,
      routingTablePublished: table !== undefined,
      routingConflicts: routing.result.conflicts,
      credentialError: credential.ok ? undefined : credential.error,
    }),
  );
  if (applyErrors.length > 0) throw new Error(`could not apply every object: ${applyErrors.join('; ')}`);
  return undefined;
}

/** Applies every owned object and deletes the one the spec no longer wants; returns what failed. */
async function applyOwnedObjects(
  context: ReconcileContext,
  namespace: string,
  owned: OwnedObjectsPlan,
): Promise<string[]> {
  const errors: string[] = [];
  for (const object of owned.apply) {
    try {
      await applyOwned(context, object);
    } catch (error) {
      if (context.signal.aborted) throw error;
      errors.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
    }
  }
  if (owned.deleteNetworkPolicy !== undefined) {
    const policy = owned.deleteNetworkPolicy;
    try {
      await deleteOwned(context, RESOURCES.networkPolicy, namespace, policy);
    } catch (error) {
      if (context.signal.aborted) throw error;
      errors.push(`delete NetworkPolicy/${policy}: ${(error as Error).message}`);
    }
  }
  return errors;
}

/** What the routing table and the ledger are built from: the cluster's pods and the table in force. */
function observeRouting(
  context: ReconcileContext,
  cluster: VoiceEdgeCluster,
  currentStatus: VoiceEdgeClusterStatus,
): RoutingObservation {
  const namespace = cluster.metadata.namespace ?? 'default';
  const name = cluster.metadata.name;
  return {
    cluster,
    pods: clusterPods(context.caches, namespace, name),
    relayPods: relayPods(context.caches, namespace, name),
    cached: publishedTable(context.caches, namespace, name),
    cachedVersion: context.caches.configMaps.get(namespace, routingConfigMapName(name))?.metadata
      .resourceVersion as string | undefined,
    lastWritten: context.published.get(clusterKey(namespace, name)),
    ledgerExists: context.caches.configMaps.get(namespace, ledgerConfigMapName(name)) !== undefined,
    knownGeneration: currentStatus.routingTableGeneration ?? 0,
  };
}

/** Publishes the planned table, if it changed; returns the table in force after. */
async function publishRoutingTable(
  context: ReconcileContext,
  namespace: string,
  name: string,
  routing: RoutingPlan,
): Promise<RoutingTable | undefined> {
  if (routing.publish === undefined) return routing.base;
  const key = clusterKey(namespace, name);
  const { table } = routing.result;
  try {
    const written = await serverSideApply<{ metadata: { resourceVersion: string } }>(
      context.client,
      routing.publish,
      { fieldManager: FIELD_MANAGER, signal: context.signal },
    );
    context.published.set(key, {
      generation: table.generation,
      resourceVersion: written.metadata.resourceVersion,
      table,
    });
  } catch (error) {
    // Written by someone else since it was read (or gone): start again from the cache.
    if (isConflict(error) || isNotFound(error)) context.published.delete(key);
    throw error;
  }
  context.metrics.routingTablePublishes.inc({ namespace, cluster: name });
  context.logger.info(
    {
      cluster: `${namespace}/${name}`,
      generation: table.generation,
      transceivers: table.transceivers.length,
    },
    'published the routing table',
  );
  return table;
}

/**
 * Deletes an owned object the spec no longer wants (the operator keeps no cache of its kind): once
 * per term and resync period, a missing one is fine.
 */
async function deleteOwned(
  context: ReconcileContext,
  resource: (typeof RESOURCES)[keyof typeof RESOURCES],
  namespace: string,
  name: string,
): Promise<void> {
  const key = `${resource.kind}/${namespace}/${name}`;
  const previous = context.applied.get(key);
  const now = context.now();
  if (previous?.hash === 'deleted' && now - previous.at < context.config.resyncSeconds * 1000) return;
  try {
    await deleteObject(context.client, { resource, namespace, name }, { signal: context.signal });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  context.applied.set(key, { hash: 'deleted', at: now, resourceVersion: undefined });
}

/**
 * Server-side apply of one owned object, skipped when this term already applied exactly this and
 * (for watched kinds) nobody has changed the object since.
 */
async function applyOwned(context: ReconcileContext, object: DesiredObject): Promise<void> {
  const key = `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`;
  const hash = createHash('sha256').update(JSON.stringify(object)).digest('hex');
  const previous = context.applied.get(key);
  const now = context.now();
  if (previous?.hash === hash && now - previous.at < context.config.resyncSeconds * 1000) {
    if (!WATCHED_KINDS.has(object.kind)) return;
    const informer = object.kind === 'Deployment' ? context.caches.deployments : context.caches.services;
    const cached = informer.get(object.metadata.namespace, object.metadata.name);
    if (cached !== undefined && cached.metadata.resourceVersion === previous.resourceVersion) return;
  }
  const written = await serverSideApply<{ metadata?: { resourceVersion?: string } }>(context.client, object, {
    fieldManager: FIELD_MANAGER,
    signal: context.signal,
  });
  context.applied.set(key, { hash, at: now, resourceVersion: written?.metadata?.resourceVersion });
}

function emptyInput() {
  const unknown = { available: false, rollingOut: false, message: '' };
  return {
    deleting: false,
    waitingForPools: [] as string[],
    invalidSpec: undefined as string | undefined,
    applyErrors: [] as string[],
    relay: unknown,
    signaling: unknown,
    relayAddresses: [] as string[],
    routingTablePublished: false,
    routingConflicts: [] as string[],
    credentialError: undefined as string | undefined,
  };
}
