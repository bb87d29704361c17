// What one TransceiverPool needs next, as a pure function of its spec, its pods, what the
// transceivers last said about themselves, the published routing table and the time. The
// reconciler carries the plan out; running it twice on the same input gives the same plan.
//
// Scale-down never cuts a call: a pod chosen to go is marked draining (annotation → routing table),
// told to drain once the table shows it draining, and deleted only when it says it is draining with
// no sessions left, or when its drain timeout has passed.
import type { PoolTransceiverStatus } from './api/v1alpha1.ts';
import { hasFinished, type ObservedTransceiverPod } from './observed-transceiver-pod.ts';
import type { StatusSample } from './status-sample.ts';

export interface PoolPlanInput {
  /** Active pods wanted (0 while the pool is being deleted). */
  readonly replicas: number;
  readonly drainTimeoutSeconds: number;
  /**
   * Hash of the pod template now: an active pod built from another one is replaced. Undefined when
   * pods cannot be built (no cluster): every pod then counts as current.
   */
  readonly templateHash: string | undefined;
  /** The pool's pods, terminating ones included. */
  readonly pods: readonly ObservedTransceiverPod[];
  /** Latest /status per pod name; absent when unknown. */
  readonly samples: ReadonlyMap<string, StatusSample>;
  /** IDs the published routing table lists as draining. */
  readonly publishedDraining: ReadonlySet<number>;
  /** False while pods cannot be built (cluster missing, relay addresses unknown). */
  readonly canCreate: boolean;
  /** Unix seconds. */
  readonly now: number;
}

export type DeleteReason = 'drained' | 'drain-timeout' | 'finished' | 'no-address';

export interface PoolPlan {
  /** New pods to create (each needs a freshly allocated ID). */
  readonly create: number;
  /** Active pods to mark draining now. */
  readonly drain: readonly ObservedTransceiverPod[];
  /** Draining pods whose draining-since annotation is unreadable: stamp it again with now. */
  readonly restamp: readonly ObservedTransceiverPod[];
  /** Draining pods published as draining that have not said they drain: POST /drain. */
  readonly notifyDrain: readonly ObservedTransceiverPod[];
  readonly delete: readonly { readonly pod: ObservedTransceiverPod; readonly reason: DeleteReason }[];
  /** Unix seconds at which the plan changes by itself (the next drain timeout), if any. */
  readonly wakeAt: number | undefined;
  readonly status: PoolPlanStatus;
}

export interface PoolPlanStatus {
  /** Active pods (not draining, not terminating, not finished). */
  readonly replicas: number;
  readonly readyReplicas: number;
  /** Active pods built from the current template. */
  readonly updatedReplicas: number;
  readonly drainingReplicas: number;
  /** Sessions on every live pod of the pool, as far as known. */
  readonly sessions: number;
  /** Pods whose session count is not known (no answer yet). */
  readonly unknownSessions: number;
  readonly transceivers: readonly PoolTransceiverStatus[];
}

export function planPool(input: PoolPlanInput): PoolPlan {
  const live = input.pods.filter((pod) => !pod.terminating);
  const finished = live.filter(hasFinished);
  const running = live.filter((pod) => !hasFinished(pod));
  const active = running.filter((pod) => !pod.draining);
  const draining = running.filter((pod) => pod.draining);

  const isCurrent = (pod: ObservedTransceiverPod) =>
    input.templateHash === undefined || pod.templateHash === input.templateHash;
  const upToDate = active.filter(isCurrent);
  const outdated = active.filter((pod) => !isCurrent(pod));
  const replicas = Math.max(0, input.replicas);

  const create = input.canCreate ? Math.max(0, replicas - upToDate.length) : 0;
  const drain: ObservedTransceiverPod[] = [];
  if (upToDate.length > replicas) {
    const ranked = upToDate.toSorted((a, b) => compareForDrain(a, b, input.samples));
    drain.push(...ranked.slice(0, upToDate.length - replicas));
  }
  // Pods of an old template go once the new ones can carry the load (surge first, then drain).
  const upToDateReady = upToDate.filter((pod) => pod.ready).length;
  if (outdated.length > 0 && upToDateReady >= replicas) drain.push(...outdated);

  const restamp: ObservedTransceiverPod[] = [];
  const notifyDrain: ObservedTransceiverPod[] = [];
  const deletions: { pod: ObservedTransceiverPod; reason: DeleteReason }[] = finished.map((pod) => ({
    pod,
    reason: 'finished' as const,
  }));
  let wakeAt: number | undefined;
  for (const pod of draining) {
    if (pod.drainingSince === undefined) {
      restamp.push(pod);
      continue;
    }
    if (pod.podIP === undefined) {
      // Never had an address: never in the routing table, never had a session.
      deletions.push({ pod, reason: 'no-address' });
      continue;
    }
    const deadline = pod.drainingSince + input.drainTimeoutSeconds;
    if (input.now >= deadline) {
      deletions.push({ pod, reason: 'drain-timeout' });
      continue;
    }
    wakeAt = wakeAt === undefined ? deadline : Math.min(wakeAt, deadline);
    if (!input.publishedDraining.has(pod.id)) continue; // relays and signaling must see it first
    const sample = input.samples.get(pod.name);
    if (sample?.state !== 'draining') notifyDrain.push(pod);
    else if (sample.sessions === 0) deletions.push({ pod, reason: 'drained' });
  }

  let sessions = 0;
  let unknownSessions = 0;
  for (const pod of running) {
    const sample = input.samples.get(pod.name);
    if (sample === undefined) unknownSessions++;
    else sessions += sample.sessions;
  }
  const transceivers = running
    .toSorted((a, b) => a.id - b.id)
    .map(
      (pod): PoolTransceiverStatus => ({
        id: pod.id,
        pod: pod.name,
        state: pod.draining ? 'draining' : 'active',
        ready: pod.ready,
        sessions: input.samples.get(pod.name)?.sessions ?? 0,
      }),
    );
  return {
    create,
    drain,
    restamp,
    notifyDrain,
    delete: deletions,
    wakeAt,
    status: {
      replicas: active.length,
      readyReplicas: active.filter((pod) => pod.ready).length,
      updatedReplicas: upToDate.length,
      drainingReplicas: draining.length,
      sessions,
      unknownSessions,
      transceivers,
    },
  };
}

/**
 * Which active pod drains first: one that is not ready (it can hold no calls), then the one with
 * the fewest known sessions (a ready pod whose count is unknown goes last), then the highest ID.
 */
function compareForDrain(
  a: ObservedTransceiverPod,
  b: ObservedTransceiverPod,
  samples: ReadonlyMap<string, StatusSample>,
): number {
  if (a.ready !== b.ready) return a.ready ? 1 : -1;
  const sessionsOf = (pod: ObservedTransceiverPod) =>
    pod.ready ? (samples.get(pod.name)?.sessions ?? Number.POSITIVE_INFINITY) : 0;
  const bySessions = sessionsOf(a) - sessionsOf(b);
  if (bySessions !== 0 && !Number.isNaN(bySessions)) return bySessions;
  return b.id - a.id;
}
