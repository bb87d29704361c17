// Reconciles one TransceiverPool, level-triggered, in three steps: observe (its cluster, the
// internal-API credential, its pods — cache plus this term's own recent writes —, the transceivers'
// last /status and the published routing table), plan (pool-reconcile-plan.ts, pure: the
// autoscaler's replicas, the pod plan of pool-plan.ts, the Events), execute (the scale subresource,
// draining annotations, POST /drain, deletes, ID allocation and pod creation), then the status.
// Deleting a pool drains every pod first; the finalizer goes when the last pod has.

import { isConflict, isNotFound, KubeApiError } from '../../kube/client.ts';
import type { EventSubject } from '../../kube/events.ts';
import type { ReconcileOutcome } from '../../kube/work-queue.ts';
import { create, deleteObject, mergePatch } from '../../kube/writes.ts';
import { mergeConditions } from '../api/conditions.ts';
import {
  ANNOTATION_DRAINING_SINCE,
  AUTOSCALER_FIELD_MANAGER,
  FIELD_MANAGER,
  type ObjectMeta,
  ObjectMetaSchema,
  POOL_FINALIZER,
  poolSelector,
  readTransceiverPool,
  readVoiceEdgeCluster,
  relayName,
  type TransceiverPool,
  type TransceiverPoolStatus,
} from '../api/v1alpha1.ts';
import { type TransceiverPodInput, transceiverPod } from '../desired/transceiver-pod.ts';
import { type ObservedTransceiverPod, readTransceiverPod } from '../observed-transceiver-pod.ts';
import {
  type ClusterLookup,
  createFailedEvent,
  type PodsPlan,
  type PoolEvent,
  type PoolObservation,
  planPods,
  planScale,
  type ScalePlan,
  scalingDownEvent,
  scalingUpEvent,
} from '../pool-reconcile-plan.ts';
import { poolConditions } from '../pool-status.ts';
import { relayAddresses } from '../relay-addresses.ts';
import { RESOURCES } from '../resources.ts';
import type { StatusSample } from '../status-sample.ts';
import { ensureApiCredential } from './api-credential.ts';
import {
  clusterKey,
  clusterPods,
  poolKey,
  poolPods,
  publishedTable,
  type ReconcileContext,
} from './context.ts';
import { setFinalizer } from './finalizers.ts';
import { allocateTransceiverIds } from './id-allocator.ts';
import { writeStatus } from './status.ts';

export async function reconcilePool(
  context: ReconcileContext,
  namespace: string,
  name: string,
): Promise<ReconcileOutcome | undefined> {
  const key = poolKey(namespace, name);
  const raw = context.caches.pools.get(namespace, name);
  if (raw === undefined) {
    forgetPool(context, key, namespace, name);
    return undefined;
  }
  const meta = ObjectMetaSchema.parse(raw.metadata);
  const subject: EventSubject = { apiVersion: raw.apiVersion, kind: 'TransceiverPool', metadata: meta };
  const currentStatus = (raw.status ?? {}) as TransceiverPoolStatus;
  const now = context.now();
  const conditionsOf = (states: ReturnType<typeof poolConditions>) =>
    mergeConditions(currentStatus.conditions, states, meta.generation, new Date(now));

  const read = readTransceiverPool(raw);
  if (!read.ok) {
    context.recorder.record(subject, 'Warning', 'InvalidSpec', 'Validate', read.error);
    await writeStatus(context, RESOURCES.pool, meta, currentStatus, {
      observedGeneration: meta.generation,
      conditions: conditionsOf(
        poolConditions({
          invalidSpec: read.error,
          deleting: false,
          blocked: undefined,
          writeError: undefined,
          replicas: 0,
          status: emptyPlanStatus(),
          unpublished: 0,
        }),
      ),
    });
    return undefined;
  }
  const pool = read.object;
  const deleting = meta.deletionTimestamp !== undefined;
  if (!deleting) await setFinalizer(context, RESOURCES.pool, meta, POOL_FINALIZER, true);

  const observed = await observePool(context, pool, meta, deleting, now);
  const writes = new PassWrites(context, now);

  // Replicas: the spec's, 0 while deleting, or the autoscaler's. The autoscaler's are written
  // (through /scale) before the pods are planned: the pods follow the replicas the API server took,
  // and if it refused them (e.g. RBAC without transceiverpools/scale), the spec's, with the refusal
  // in the status (Degraded) instead of only in the log.
  let replicas = deleting ? 0 : pool.spec.replicas;
  const scale = planScale(observed);
  if (scale !== undefined) {
    context.recommendations.set(key, scale.history);
    const scaled = await writes.attempt('autoscaler', () => writeScale(context, subject, pool, scale));
    if (scaled) {
      replicas = scale.replicas;
      if (scale.recheckAt !== undefined) writes.requeueAt(scale.recheckAt);
    }
  }

  const pods = planPods(observed, replicas);
  if (pods.plan.wakeAt !== undefined) writes.requeueAt(pods.plan.wakeAt * 1000 + 500);
  await executePods(context, subject, observed, pods, replicas, writes);

  // Status, from what this pass saw (the writes above show in the next pass).
  const { plan } = pods;
  await writeStatus(context, RESOURCES.pool, meta, currentStatus, {
    observedGeneration: meta.generation,
    replicas: plan.status.replicas,
    readyReplicas: plan.status.readyReplicas,
    drainingReplicas: plan.status.drainingReplicas,
    sessions: plan.status.sessions,
    capacity: plan.status.replicas * pool.spec.capacityPerPod,
    selector: poolSelector(pool.spec.clusterName, name),
    transceivers: plan.status.transceivers,
    conditions: conditionsOf(
      poolConditions({
        invalidSpec: undefined,
        deleting,
        blocked: deleting ? undefined : pods.blocked,
        writeError: writes.error,
        replicas,
        status: plan.status,
        unpublished: pods.unpublished,
      }),
    ),
  });
  context.metrics.transceivers.set({ namespace, pool: name, state: 'active' }, plan.status.replicas);
  context.metrics.transceivers.set(
    { namespace, pool: name, state: 'draining' },
    plan.status.drainingReplicas,
  );
  context.metrics.sessions.set({ namespace, pool: name }, plan.status.sessions);

  if (deleting) {
    const remaining = poolPods(context.caches, namespace, name, meta.uid ?? '');
    if (remaining.length === 0 && !context.expectations.pending(key)) {
      await setFinalizer(context, RESOURCES.pool, meta, POOL_FINALIZER, false);
      context.logger.info({ pool: `${namespace}/${name}` }, 'every transceiver drained: pool released');
    }
  }
  if (context.expectations.pending(key)) writes.requeueAt(now + 2_000);
  if (writes.error !== undefined) throw new Error(writes.error);
  return writes.requeueAfterMs === undefined ? undefined : { requeueAfterMs: writes.requeueAfterMs };
}

/** What the pool's reconcile reads: its cluster, credential, pods, their /status and the published table. */
async function observePool(
  context: ReconcileContext,
  pool: TransceiverPool,
  meta: ObjectMeta,
  deleting: boolean,
  now: number,
): Promise<PoolObservation> {
  const namespace = meta.namespace ?? 'default';
  const name = meta.name;
  // The cluster: without it (or its relay addresses) no pod can be built, but existing pods are
  // still drained and deleted as the plan says.
  const clusterName = pool.spec.clusterName;
  const clusterRaw = context.caches.clusters.get(namespace, clusterName);
  const clusterRead = clusterRaw === undefined ? undefined : readVoiceEdgeCluster(clusterRaw);
  const cluster: ClusterLookup =
    clusterRead === undefined
      ? { kind: 'missing' }
      : clusterRead.ok
        ? { kind: 'found', cluster: clusterRead.object }
        : { kind: 'invalid', error: clusterRead.error };
  const relayAddressList =
    cluster.kind === 'found'
      ? relayAddresses(cluster.cluster, context.caches.services.get(namespace, relayName(clusterName)))
      : [];
  // The cluster's internal-API credential (its hash is part of every pod's template): as the cluster
  // reconciler last read it this term, else read (or created) now.
  const credential =
    cluster.kind === 'found'
      ? (context.credentials.get(clusterKey(namespace, clusterName)) ??
        (await ensureApiCredential(context, cluster.cluster)))
      : undefined;

  const key = poolKey(namespace, name);
  const pods = context.expectations.view(key, poolPods(context.caches, namespace, name, meta.uid ?? ''), now);
  const samples = new Map<string, StatusSample>();
  for (const pod of pods) {
    const sample = context.poller.sample(`${namespace}/${pod.name}`, now);
    if (sample) samples.set(pod.name, sample);
  }
  const published = publishedTable(context.caches, namespace, clusterName)?.transceivers ?? [];
  return {
    namespace,
    name,
    pool,
    deleting,
    cluster,
    relayAddresses: relayAddressList,
    credential,
    defaultImage: context.config.image,
    pods,
    samples,
    publishedDraining: new Set(
      published.filter((entry) => entry.state === 'draining').map((entry) => entry.id),
    ),
    publishedActive: new Set(published.filter((entry) => entry.state === 'active').map((entry) => entry.id)),
    history: context.recommendations.get(key),
    now,
  };
}

/**
 * The writes of one pass: each is attempted and a failure is kept for the status (and the retry)
 * instead of ending the pass; and when to look again.
 */
class PassWrites {
  readonly #context: ReconcileContext;
  readonly #now: number;
  readonly #errors: string[] = [];
  requeueAfterMs: number | undefined;

  constructor(context: ReconcileContext, now: number) {
    this.#context = context;
    this.#now = now;
  }

  /** Runs `write`; true if it succeeded. A failure is recorded (unless the term ended: then it throws). */
  async attempt(what: string, write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (this.#context.signal.aborted) throw error;
      this.#errors.push(`${what}: ${(error as Error).message}`);
      return false;
    }
  }

  requeueAt(atMs: number): void {
    const delay = Math.max(100, atMs - this.#now);
    this.requeueAfterMs = this.requeueAfterMs === undefined ? delay : Math.min(this.requeueAfterMs, delay);
  }

  get error(): string | undefined {
    return this.#errors.length > 0 ? this.#errors.join('; ') : undefined;
  }
}

function record(context: ReconcileContext, subject: EventSubject, event: PoolEvent | undefined): void {
  if (event) context.recorder.record(subject, event.type, event.reason, event.action, event.note);
}

/** Writes the autoscaler's replicas through the scale subresource, if they changed. */
async function writeScale(
  context: ReconcileContext,
  subject: EventSubject,
  pool: TransceiverPool,
  scale: ScalePlan,
): Promise<void> {
  if (scale.change === undefined) return;
  await mergePatch(
    context.client,
    {
      resource: RESOURCES.pool,
      namespace: pool.metadata.namespace ?? 'default',
      name: pool.metadata.name,
      subresource: 'scale',
    },
    { spec: { replicas: scale.change.replicas } },
    { fieldManager: AUTOSCALER_FIELD_MANAGER, signal: context.signal },
  );
  record(context, subject, scale.change.event);
}

/** Carries out the pod plan: draining annotations, POST /drain, deletes, then new pods. */
async function executePods(
  context: ReconcileContext,
  subject: EventSubject,
  observed: PoolObservation,
  pods: PodsPlan,
  replicas: number,
  writes: PassWrites,
): Promise<void> {
  const { namespace } = observed;
  const key = poolKey(namespace, observed.name);
  const nowSeconds = Math.floor(observed.now / 1000);
  const scaledDown: ObservedTransceiverPod[] = [];
  for (const drain of pods.drains) {
    const { pod } = drain;
    const ok = await writes.attempt(`mark ${pod.name} draining`, () =>
      mergePatch(
        context.client,
        { resource: RESOURCES.pod, namespace, name: pod.name },
        {
          metadata: {
            annotations: { [ANNOTATION_DRAINING_SINCE]: String(nowSeconds) },
            // Only the pod that was planned for: a different UID makes the patch fail.
            uid: pod.uid,
          },
        },
        { fieldManager: FIELD_MANAGER, signal: context.signal },
      ),
    );
    if (!ok) continue;
    if (drain.scaleDown) scaledDown.push(pod);
    record(context, subject, drain.event);
  }
  record(context, subject, scalingDownEvent(scaledDown, replicas));

  for (const pod of pods.plan.notifyDrain) {
    const drainCredential = context.credentials.get(clusterKey(namespace, observed.pool.spec.clusterName));
    context.poller.requestDrain({
      key: `${namespace}/${pod.name}`,
      podIP: pod.podIP!,
      id: pod.id,
      token: drainCredential?.ok ? drainCredential.token : undefined,
    });
  }

  for (const { pod, event } of pods.deletes) {
    const deleted = await writes.attempt(`delete ${pod.name}`, async () => {
      try {
        await deleteObject(
          context.client,
          { resource: RESOURCES.pod, namespace, name: pod.name, uid: pod.uid },
          { signal: context.signal },
        );
      } catch (error) {
        if (!isNotFound(error) && !isConflict(error)) throw error;
      }
    });
    if (!deleted) continue;
    context.expectations.expectDeleted(key, pod, observed.now);
    record(context, subject, event);
  }

  if (pods.plan.create > 0 && pods.podInput) {
    await createPods(context, subject, pods.podInput, pods.plan.create, replicas, writes);
  }
}

async function createPods(
  context: ReconcileContext,
  subject: EventSubject,
  podInput: TransceiverPodInput,
  count: number,
  replicas: number,
  writes: PassWrites,
): Promise<void> {
  const { cluster } = podInput;
  const namespace = subject.metadata.namespace ?? 'default';
  const key = poolKey(namespace, subject.metadata.name);
  const spareKey = clusterKey(namespace, cluster.metadata.name);
  const spares = context.spareIds.get(spareKey) ?? [];
  const ids = spares.splice(0, count);
  if (ids.length < count) {
    // The ledger never goes below an ID in use anywhere in the cluster or in its routing table.
    const inUse = clusterPods(context.caches, namespace, cluster.metadata.name).map((pod) => pod.id);
    const listed = (publishedTable(context.caches, namespace, cluster.metadata.name)?.transceivers ?? []).map(
      (entry) => entry.id,
    );
    const allocated = await writes.attempt('allocate transceiver IDs', async () => {
      ids.push(
        ...(await allocateTransceiverIds(
          context,
          cluster,
          count - ids.length,
          Math.max(0, ...inUse, ...listed),
        )),
      );
    });
    if (!allocated) {
      context.spareIds.set(spareKey, [...ids, ...spares]);
      return;
    }
    context.crash('after-id-allocation');
  }
  const created: number[] = [];
  for (let index = 0; index < ids.length; index++) {
    const id = ids[index]!;
    const pod = transceiverPod(podInput, id);
    let refused = false;
    let failure = '';
    const ok = await writes.attempt(`create ${pod.metadata.name}`, async () => {
      try {
        const answer = await create(context.client, pod, {
          fieldManager: FIELD_MANAGER,
          signal: context.signal,
        });
        const view = readTransceiverPod(answer);
        if (view) context.expectations.expectCreated(key, view, context.now());
      } catch (error) {
        // Refused outright (forbidden, invalid, quota): no pod can carry this ID, it stays usable.
        // A timeout or a 5xx may hide a pod that was created after all: that ID is never used again.
        const status = error instanceof KubeApiError ? error.status : 0;
        refused = status >= 400 && status < 500 && status !== 409;
        failure = (error as Error).message;
        throw error;
      }
    });
    if (!ok) {
      context.spareIds.set(
        spareKey,
        [...ids.slice(refused ? index : index + 1), ...spares].toSorted((a, b) => a - b),
      );
      record(context, subject, createFailedEvent(pod.metadata.name, failure));
      break;
    }
    created.push(id);
    context.crash('after-pod-create');
  }
  if (created.length === ids.length) context.spareIds.set(spareKey, spares);
  record(context, subject, scalingUpEvent(created, replicas));
}

function forgetPool(context: ReconcileContext, key: string, namespace: string, name: string): void {
  context.expectations.forget(key);
  context.recommendations.delete(key);
  for (const state of ['active', 'draining'])
    context.metrics.transceivers.remove({ namespace, pool: name, state });
  context.metrics.sessions.remove({ namespace, pool: name });
}

function emptyPlanStatus() {
  return {
    replicas: 0,
    readyReplicas: 0,
    updatedReplicas: 0,
    drainingReplicas: 0,
    sessions: 0,
    unknownSessions: 0,
    transceivers: [],
  };
}
