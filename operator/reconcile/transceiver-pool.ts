// Reconciles one TransceiverPool, level-triggered: its pods (cache plus this term's own recent
// writes), the transceivers' last /status and the published routing table go into the pure plan
// (pool-plan.ts); this carries the plan out — autoscaling through the scale subresource, draining
// annotations, POST /drain, deletes, ID allocation and pod creation — and writes status. Deleting a
// pool drains every pod first; the finalizer goes when the last pod has.

import { isConflict, isNotFound, KubeApiError } from '../../kube/client.ts';
import type { EventSubject } from '../../kube/events.ts';
import type { ReconcileOutcome } from '../../kube/work-queue.ts';
import { create, deleteObject, mergePatch } from '../../kube/writes.ts';
import { mergeConditions } from '../api/conditions.ts';
import {
  ANNOTATION_DRAINING_SINCE,
  AUTOSCALER_FIELD_MANAGER,
  FIELD_MANAGER,
  ObjectMetaSchema,
  POOL_FINALIZER,
  poolSelector,
  readTransceiverPool,
  readVoiceEdgeCluster,
  relayName,
  type TransceiverPool,
  type TransceiverPoolStatus,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { recommend } from '../autoscaler.ts';
import { type TransceiverPodInput, templateHash, transceiverPod } from '../desired/transceiver-pod.ts';
import { hasFinished, type ObservedTransceiverPod, readTransceiverPod } from '../observed-transceiver-pod.ts';
import { type PoolPlan, planPool } from '../pool-plan.ts';
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
  const nowSeconds = Math.floor(now / 1000);
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

  // The cluster: without it (or its relay addresses) no pod can be built, but existing pods are
  // still drained and deleted as the plan says.
  const clusterName = pool.spec.clusterName;
  const clusterRaw = context.caches.clusters.get(namespace, clusterName);
  const clusterRead = clusterRaw === undefined ? undefined : readVoiceEdgeCluster(clusterRaw);
  const cluster: VoiceEdgeCluster | undefined = clusterRead?.ok ? clusterRead.object : undefined;
  const addresses = cluster
    ? relayAddresses(cluster, context.caches.services.get(namespace, relayName(clusterName)))
    : [];
  let blocked: { reason: string; message: string } | undefined;
  if (clusterRaw === undefined) {
    blocked = {
      reason: 'ClusterNotFound',
      message: `no VoiceEdgeCluster ${clusterName} in namespace ${namespace}`,
    };
  } else if (clusterRead && !clusterRead.ok) {
    blocked = { reason: 'ClusterInvalid', message: `VoiceEdgeCluster ${clusterName}: ${clusterRead.error}` };
  } else if (addresses.length === 0) {
    blocked = {
      reason: 'RelayAddressesUnknown',
      message: `VoiceEdgeCluster ${clusterName} has no relay address yet (spec.relay.publicAddresses or a load-balancer IP)`,
    };
  }
  // The cluster's internal-API credential (its hash is part of every pod's template): as the cluster
  // reconciler last read it this term, else read (or created) now.
  const credential = cluster
    ? (context.credentials.get(clusterKey(namespace, clusterName)) ??
      (await ensureApiCredential(context, cluster)))
    : undefined;
  if (credential && !credential.ok && !blocked) {
    blocked = { reason: 'TransceiverApiCredentialUnavailable', message: credential.error };
  }
  const podInput: TransceiverPodInput | undefined =
    cluster && credential?.ok && !blocked
      ? {
          pool,
          cluster,
          defaultImage: context.config.image,
          relayAddresses: addresses,
          apiTokensHash: credential.hash,
        }
      : undefined;

  const pods = context.expectations.view(key, poolPods(context.caches, namespace, name, meta.uid ?? ''), now);
  const samples = new Map<string, StatusSample>();
  for (const pod of pods) {
    const sample = context.poller.sample(`${namespace}/${pod.name}`, now);
    if (sample) samples.set(pod.name, sample);
  }
  const table = publishedTable(context.caches, namespace, clusterName);
  const publishedDraining = new Set(
    (table?.transceivers ?? []).filter((entry) => entry.state === 'draining').map((entry) => entry.id),
  );
  const publishedActive = new Set(
    (table?.transceivers ?? []).filter((entry) => entry.state === 'active').map((entry) => entry.id),
  );

  const writeErrors: string[] = [];
  let requeueAfterMs: number | undefined;
  const requeueAt = (atMs: number) => {
    const delay = Math.max(100, atMs - now);
    requeueAfterMs = requeueAfterMs === undefined ? delay : Math.min(requeueAfterMs, delay);
  };

  // Replicas: the spec's, 0 while deleting, or the autoscaler's (written through /scale).
  let replicas = deleting ? 0 : pool.spec.replicas;
  if (!deleting && pool.spec.autoscaling.enabled) {
    try {
      const scaled = await autoscale(context, subject, pool, pods, samples, now);
      replicas = scaled.replicas;
      if (scaled.recheckAt !== undefined) requeueAt(scaled.recheckAt);
    } catch (error) {
      if (context.signal.aborted) throw error;
      // The decision could not be written (e.g. RBAC without transceiverpools/scale): act on the
      // replicas the spec holds, and say why in the status (Degraded) instead of only in the log.
      writeErrors.push(`autoscaler: ${(error as Error).message}`);
    }
  }

  const currentHash = podInput ? templateHash(podInput) : undefined;
  const plan = planPool({
    replicas,
    drainTimeoutSeconds: pool.spec.drainTimeoutSeconds,
    templateHash: currentHash,
    pods,
    samples,
    publishedDraining,
    canCreate: podInput !== undefined && !deleting,
    now: nowSeconds,
  });
  if (plan.wakeAt !== undefined) requeueAt(plan.wakeAt * 1000 + 500);

  const attempt = async (what: string, write: () => Promise<unknown>) => {
    try {
      await write();
      return true;
    } catch (error) {
      if (context.signal.aborted) throw error;
      writeErrors.push(`${what}: ${(error as Error).message}`);
      return false;
    }
  };

  await markDraining(context, subject, plan, {
    deleting,
    replicas,
    templateHash: currentHash,
    nowSeconds,
    attempt,
  });
  for (const pod of plan.notifyDrain) {
    const drainCredential = context.credentials.get(clusterKey(namespace, clusterName));
    context.poller.requestDrain({
      key: `${namespace}/${pod.name}`,
      podIP: pod.podIP!,
      id: pod.id,
      token: drainCredential?.ok ? drainCredential.token : undefined,
    });
  }
  for (const { pod, reason } of plan.delete) {
    const deleted = await attempt(`delete ${pod.name}`, async () => {
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
    context.expectations.expectDeleted(key, pod, now);
    const sessions = samples.get(pod.name)?.sessions;
    const who = `transceiver ${pod.id} (pod ${pod.name})`;
    if (reason === 'drained') {
      context.recorder.record(
        subject,
        'Normal',
        'DrainFinished',
        'Drain',
        `${who} drained: no sessions left, pod deleted`,
      );
    } else if (reason === 'no-address') {
      context.recorder.record(
        subject,
        'Normal',
        'DrainFinished',
        'Drain',
        `${who} never started: pod deleted`,
      );
    } else if (reason === 'drain-timeout') {
      context.recorder.record(
        subject,
        'Warning',
        'DrainTimeout',
        'Drain',
        `${who} still had ${sessions ?? 'an unknown number of'} sessions after drainTimeoutSeconds ${pool.spec.drainTimeoutSeconds}: pod deleted`,
      );
    } else {
      context.recorder.record(
        subject,
        'Warning',
        'TransceiverStopped',
        'Replace',
        `${who} stopped (phase ${pod.phase}): pod deleted`,
      );
    }
  }

  if (plan.create > 0 && podInput && cluster) {
    await createPods(context, subject, podInput, cluster, plan.create, replicas, attempt);
  }

  // Status, from what this pass saw (the writes above show in the next pass).
  const unpublished = pods.filter(
    (pod) =>
      !pod.terminating && !pod.draining && !hasFinished(pod) && pod.ready && !publishedActive.has(pod.id),
  ).length;
  const writeError = writeErrors.length > 0 ? writeErrors.join('; ') : undefined;
  await writeStatus(context, RESOURCES.pool, meta, currentStatus, {
    observedGeneration: meta.generation,
    replicas: plan.status.replicas,
    readyReplicas: plan.status.readyReplicas,
    drainingReplicas: plan.status.drainingReplicas,
    sessions: plan.status.sessions,
    capacity: plan.status.replicas * pool.spec.capacityPerPod,
    selector: poolSelector(clusterName, name),
    transceivers: plan.status.transceivers,
    conditions: conditionsOf(
      poolConditions({
        invalidSpec: undefined,
        deleting,
        blocked: deleting ? undefined : blocked,
        writeError,
        replicas,
        status: plan.status,
        unpublished,
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
  if (context.expectations.pending(key)) requeueAt(now + 2_000);
  if (writeError !== undefined) throw new Error(writeError);
  return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
}

type Attempt = (what: string, write: () => Promise<unknown>) => Promise<boolean>;

async function autoscale(
  context: ReconcileContext,
  subject: EventSubject,
  pool: TransceiverPool,
  pods: readonly ObservedTransceiverPod[],
  samples: ReadonlyMap<string, StatusSample>,
  now: number,
): Promise<{ replicas: number; recheckAt: number | undefined }> {
  const key = poolKey(pool.metadata.namespace ?? 'default', pool.metadata.name);
  const running = pods.filter((pod) => !pod.terminating && !hasFinished(pod));
  let knownSessions = 0;
  let unknownPods = 0;
  for (const pod of running) {
    const sample = samples.get(pod.name);
    if (sample) knownSessions += sample.sessions;
    else if (!pod.draining) unknownPods++;
  }
  const spec = pool.spec.autoscaling;
  // A fresh term has no history: start from the current replicas, so a restart never scales down
  // before a whole stabilisation window has passed.
  const history = context.recommendations.get(key) ?? [{ at: now, replicas: pool.spec.replicas }];
  const decision = recommend({
    spec,
    capacityPerPod: pool.spec.capacityPerPod,
    currentReplicas: pool.spec.replicas,
    knownSessions,
    unknownPods,
    history,
    now,
  });
  context.recommendations.set(key, decision.history);
  if (decision.replicas !== pool.spec.replicas) {
    await mergePatch(
      context.client,
      {
        resource: RESOURCES.pool,
        namespace: pool.metadata.namespace ?? 'default',
        name: pool.metadata.name,
        subresource: 'scale',
      },
      { spec: { replicas: decision.replicas } },
      { fieldManager: AUTOSCALER_FIELD_MANAGER, signal: context.signal },
    );
    const up = decision.replicas > pool.spec.replicas;
    context.recorder.record(
      subject,
      'Normal',
      up ? 'ScaledUp' : 'ScaledDown',
      'Autoscale',
      `autoscaler: replicas ${pool.spec.replicas} → ${decision.replicas} (${knownSessions} sessions${unknownPods > 0 ? `, ${unknownPods} transceivers not reporting` : ''}; target ${spec.targetUtilizationPercent}% of ${pool.spec.capacityPerPod} per transceiver)`,
    );
  }
  return { replicas: decision.replicas, recheckAt: decision.recheckAt };
}

async function markDraining(
  context: ReconcileContext,
  subject: EventSubject,
  plan: PoolPlan,
  options: {
    deleting: boolean;
    replicas: number;
    templateHash: string | undefined;
    nowSeconds: number;
    attempt: Attempt;
  },
): Promise<void> {
  const namespace = subject.metadata.namespace ?? 'default';
  const scaledDown: ObservedTransceiverPod[] = [];
  for (const pod of [...plan.drain, ...plan.restamp]) {
    const ok = await options.attempt(`mark ${pod.name} draining`, () =>
      mergePatch(
        context.client,
        { resource: RESOURCES.pod, namespace, name: pod.name },
        {
          metadata: {
            annotations: { [ANNOTATION_DRAINING_SINCE]: String(options.nowSeconds) },
            // Only the pod that was planned for: a different UID makes the patch fail.
            uid: pod.uid,
          },
        },
        { fieldManager: FIELD_MANAGER, signal: context.signal },
      ),
    );
    if (!ok) continue;
    const restamped = !plan.drain.includes(pod);
    const replaced = options.templateHash !== undefined && pod.templateHash !== options.templateHash;
    const why = options.deleting
      ? 'the pool is being deleted'
      : restamped
        ? 'its draining-since annotation was unreadable and is set again'
        : replaced
          ? 'replaced by a pod of the current template'
          : `scale-down to ${options.replicas} replicas`;
    if (!options.deleting && !restamped && !replaced) scaledDown.push(pod);
    context.recorder.record(
      subject,
      'Normal',
      'DrainStarted',
      'Drain',
      `transceiver ${pod.id} (pod ${pod.name}) draining: ${why}; no new sessions, deleted when its calls end`,
    );
  }
  if (scaledDown.length > 0) {
    context.recorder.record(
      subject,
      'Normal',
      'ScalingDown',
      'Scale',
      `draining ${scaledDown.length} transceivers (IDs ${scaledDown.map((pod) => pod.id).join(', ')}) for ${options.replicas} replicas`,
    );
  }
}

async function createPods(
  context: ReconcileContext,
  subject: EventSubject,
  podInput: TransceiverPodInput,
  cluster: VoiceEdgeCluster,
  count: number,
  replicas: number,
  attempt: Attempt,
): Promise<void> {
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
    const allocated = await attempt('allocate transceiver IDs', async () => {
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
    const ok = await attempt(`create ${pod.metadata.name}`, async () => {
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
      context.recorder.record(
        subject,
        'Warning',
        'CreateFailed',
        'Scale',
        `could not create pod ${pod.metadata.name}: ${failure}`,
      );
      break;
    }
    created.push(id);
    context.crash('after-pod-create');
  }
  if (created.length === ids.length) context.spareIds.set(spareKey, spares);
  if (created.length > 0) {
    context.recorder.record(
      subject,
      'Normal',
      'ScalingUp',
      'Scale',
      `created ${created.length} transceivers (IDs ${created.join(', ')}) for ${replicas} replicas`,
    );
  }
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
