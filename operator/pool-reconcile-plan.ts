// What one reconcile of a TransceiverPool decides, as pure functions of what it observed: whether
// pods can be built (and if not, why), the autoscaler's replicas, the pod plan (pool-plan.ts) and
// the text of every Event its writes are reported with. reconcile/transceiver-pool.ts observes,
// calls these, and carries out the writes.

import type { EventType } from '../kube/events.ts';
import type { TransceiverPool, VoiceEdgeCluster } from './api/v1alpha1.ts';
import { type Recommendation, recommend } from './autoscaler.ts';
import type { ApiCredential } from './desired/transceiver-api-secret.ts';
import { type TransceiverPodInput, templateHash } from './desired/transceiver-pod.ts';
import { hasFinished, type ObservedTransceiverPod } from './observed-transceiver-pod.ts';
import { type DeleteReason, type PoolPlan, planPool } from './pool-plan.ts';
import type { StatusSample } from './status-sample.ts';

/** The pool's VoiceEdgeCluster as the cache holds it. */
export type ClusterLookup =
  | { readonly kind: 'missing' }
  | { readonly kind: 'invalid'; readonly error: string }
  | { readonly kind: 'found'; readonly cluster: VoiceEdgeCluster };

/** Everything one reconcile of a valid pool reads before it decides. */
export interface PoolObservation {
  readonly namespace: string;
  readonly name: string;
  readonly pool: TransceiverPool;
  readonly deleting: boolean;
  readonly cluster: ClusterLookup;
  /** The public relay addresses answers advertise (none without a cluster). */
  readonly relayAddresses: readonly string[];
  /** The cluster's internal-API credential; undefined without a cluster. */
  readonly credential: ApiCredential | undefined;
  /** The image when the cluster names none (the operator's configuration). */
  readonly defaultImage: string;
  /** The pool's pods (cache plus this term's own recent writes). */
  readonly pods: readonly ObservedTransceiverPod[];
  /** Latest fresh /status per pod name. */
  readonly samples: ReadonlyMap<string, StatusSample>;
  /** Transceiver IDs the published routing table lists as draining, and as active. */
  readonly publishedDraining: ReadonlySet<number>;
  readonly publishedActive: ReadonlySet<number>;
  /** The autoscaler's recommendations this term; undefined in a fresh term. */
  readonly history: readonly Recommendation[] | undefined;
  /** Unix ms. */
  readonly now: number;
}

export interface Blocker {
  readonly reason: string;
  readonly message: string;
}

export interface PoolEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly action: string;
  readonly note: string;
}

/** Why no pod can be built now, if so; the first of: no cluster, invalid cluster, no relay address, no credential. */
export function poolBlocker(observed: PoolObservation): Blocker | undefined {
  const clusterName = observed.pool.spec.clusterName;
  if (observed.cluster.kind === 'missing') {
    return {
      reason: 'ClusterNotFound',
      message: `no VoiceEdgeCluster ${clusterName} in namespace ${observed.namespace}`,
    };
  }
  if (observed.cluster.kind === 'invalid') {
    return {
      reason: 'ClusterInvalid',
      message: `VoiceEdgeCluster ${clusterName}: ${observed.cluster.error}`,
    };
  }
  if (observed.relayAddresses.length === 0) {
    return {
      reason: 'RelayAddressesUnknown',
      message: `VoiceEdgeCluster ${clusterName} has no relay address yet (spec.relay.publicAddresses or a load-balancer IP)`,
    };
  }
  if (observed.credential && !observed.credential.ok) {
    return { reason: 'TransceiverApiCredentialUnavailable', message: observed.credential.error };
  }
  return undefined;
}

/** What a pod of this pool is built from; undefined while pods cannot be built. */
function podInputOf(observed: PoolObservation): TransceiverPodInput | undefined {
  if (observed.cluster.kind !== 'found' || !observed.credential?.ok || poolBlocker(observed))
    return undefined;
  return {
    pool: observed.pool,
    cluster: observed.cluster.cluster,
    defaultImage: observed.defaultImage,
    relayAddresses: observed.relayAddresses,
    apiTokensHash: observed.credential.hash,
  };
}

export interface ScalePlan {
  /** The replicas the autoscaler wants. */
  readonly replicas: number;
  /** The recommendations to keep for the next reconcile. */
  readonly history: readonly Recommendation[];
  /** Unix ms at which the recommendation may change by itself, if any. */
  readonly recheckAt: number | undefined;
  /** Set when spec.replicas must be written (through /scale), with the Event that reports it. */
  readonly change: { readonly replicas: number; readonly event: PoolEvent } | undefined;
}

/** The autoscaler's decision; undefined when the pool is not autoscaled (or is being deleted). */
export function planScale(observed: PoolObservation): ScalePlan | undefined {
  const { pool, now } = observed;
  if (observed.deleting || !pool.spec.autoscaling.enabled) return undefined;
  const running = observed.pods.filter((pod) => !pod.terminating && !hasFinished(pod));
  let knownSessions = 0;
  let unknownPods = 0;
  for (const pod of running) {
    const sample = observed.samples.get(pod.name);
    if (sample) knownSessions += sample.sessions;
    else if (!pod.draining) unknownPods++;
  }
  const spec = pool.spec.autoscaling;
  // A fresh term has no history: start from the current replicas, so a restart never scales down
  // before a whole stabilisation window has passed.
  const history = observed.history ?? [{ at: now, replicas: pool.spec.replicas }];
  const decision = recommend({
    spec,
    capacityPerPod: pool.spec.capacityPerPod,
    currentReplicas: pool.spec.replicas,
    knownSessions,
    unknownPods,
    history,
    now,
  });
  const from = pool.spec.replicas;
  const change =
    decision.replicas === from
      ? undefined
      : {
          replicas: decision.replicas,
          event: {
            type: 'Normal' as const,
            reason: decision.replicas > from ? 'ScaledUp' : 'ScaledDown',
            action: 'Autoscale',
            note: `autoscaler: replicas ${from} → ${decision.replicas} (${knownSessions} sessions${unknownPods > 0 ? `, ${unknownPods} transceivers not reporting` : ''}; target ${spec.targetUtilizationPercent}% of ${pool.spec.capacityPerPod} per transceiver)`,
          },
        };
  return { replicas: decision.replicas, history: decision.history, recheckAt: decision.recheckAt, change };
}

export interface PodsPlan {
  readonly blocked: Blocker | undefined;
  readonly podInput: TransceiverPodInput | undefined;
  readonly templateHash: string | undefined;
  readonly plan: PoolPlan;
  /** Pods to annotate draining (plan.drain, then plan.restamp), each with the Event that says why. */
  readonly drains: readonly DrainWrite[];
  /** Pods to delete, each with the Event that reports it. */
  readonly deletes: readonly { readonly pod: ObservedTransceiverPod; readonly event: PoolEvent }[];
  /** Ready active pods the published routing table does not list as active yet. */
  readonly unpublished: number;
}

export interface DrainWrite {
  readonly pod: ObservedTransceiverPod;
  /** Drained for a scale-down (not a replacement, a re-stamp or the pool's deletion). */
  readonly scaleDown: boolean;
  readonly event: PoolEvent;
}

/** The pod plan for `replicas` active pods (0 while deleting), with its writes' Events. */
export function planPods(observed: PoolObservation, replicas: number): PodsPlan {
  const { pool, deleting } = observed;
  const podInput = podInputOf(observed);
  const currentHash = podInput ? templateHash(podInput) : undefined;
  const plan = planPool({
    replicas,
    drainTimeoutSeconds: pool.spec.drainTimeoutSeconds,
    templateHash: currentHash,
    pods: observed.pods,
    samples: observed.samples,
    publishedDraining: observed.publishedDraining,
    canCreate: podInput !== undefined && !deleting,
    now: Math.floor(observed.now / 1000),
  });
  const drains = [...plan.drain, ...plan.restamp].map((pod): DrainWrite => {
    const restamped = !plan.drain.includes(pod);
    const replaced = currentHash !== undefined && pod.templateHash !== currentHash;
    const why = deleting
      ? 'the pool is being deleted'
      : restamped
        ? 'its draining-since annotation was unreadable and is set again'
        : replaced
          ? 'replaced by a pod of the current template'
          : `scale-down to ${replicas} replicas`;
    return {
      pod,
      scaleDown: !deleting && !restamped && !replaced,
      event: {
        type: 'Normal',
        reason: 'DrainStarted',
        action: 'Drain',
        note: `transceiver ${pod.id} (pod ${pod.name}) draining: ${why}; no new sessions, deleted when its calls end`,
      },
    };
  });
  const deletes = plan.delete.map(({ pod, reason }) => ({
    pod,
    event: deleteEvent(pod, reason, observed.samples.get(pod.name)?.sessions, pool.spec.drainTimeoutSeconds),
  }));
  const unpublished = observed.pods.filter(
    (pod) =>
      !pod.terminating &&
      !pod.draining &&
      !hasFinished(pod) &&
      pod.ready &&
      !observed.publishedActive.has(pod.id),
  ).length;
  return {
    blocked: poolBlocker(observed),
    podInput,
    templateHash: currentHash,
    plan,
    drains,
    deletes,
    unpublished,
  };
}

function deleteEvent(
  pod: ObservedTransceiverPod,
  reason: DeleteReason,
  sessions: number | undefined,
  drainTimeoutSeconds: number,
): PoolEvent {
  const who = `transceiver ${pod.id} (pod ${pod.name})`;
  switch (reason) {
    case 'drained':
      return {
        type: 'Normal',
        reason: 'DrainFinished',
        action: 'Drain',
        note: `${who} drained: no sessions left, pod deleted`,
      };
    case 'no-address':
      return {
        type: 'Normal',
        reason: 'DrainFinished',
        action: 'Drain',
        note: `${who} never started: pod deleted`,
      };
    case 'drain-timeout':
      return {
        type: 'Warning',
        reason: 'DrainTimeout',
        action: 'Drain',
        note: `${who} still had ${sessions ?? 'an unknown number of'} sessions after drainTimeoutSeconds ${drainTimeoutSeconds}: pod deleted`,
      };
    case 'finished':
      return {
        type: 'Warning',
        reason: 'TransceiverStopped',
        action: 'Replace',
        note: `${who} stopped (phase ${pod.phase}): pod deleted`,
      };
  }
}

/** The Event for the pods that were marked draining for a scale-down, if any. */
export function scalingDownEvent(
  pods: readonly ObservedTransceiverPod[],
  replicas: number,
): PoolEvent | undefined {
  if (pods.length === 0) return undefined;
  return {
    type: 'Normal',
    reason: 'ScalingDown',
    action: 'Scale',
    note: `draining ${pods.length} transceivers (IDs ${pods.map((pod) => pod.id).join(', ')}) for ${replicas} replicas`,
  };
}

/** The Event for the transceivers that were created, if any. */
export function scalingUpEvent(ids: readonly number[], replicas: number): PoolEvent | undefined {
  if (ids.length === 0) return undefined;
  return {
    type: 'Normal',
    reason: 'ScalingUp',
    action: 'Scale',
    note: `created ${ids.length} transceivers (IDs ${ids.join(', ')}) for ${replicas} replicas`,
  };
}

export function createFailedEvent(podName: string, failure: string): PoolEvent {
  return {
    type: 'Warning',
    reason: 'CreateFailed',
    action: 'Scale',
    note: `could not create pod ${podName}: ${failure}`,
  };
}
