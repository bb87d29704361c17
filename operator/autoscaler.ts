// The built-in autoscaler's recommendation, the pure step (the HPA's algorithm, on live sessions):
//   desired = ceil(sessions / (capacityPerPod × target%)), clamped to [minReplicas, maxReplicas];
// up at once; down only to the highest recommendation seen during the stabilisation window, so a
// short lull does not drain pods that the next minute needs again. Transceivers that have not
// answered count as empty when scaling up and as exactly on target when scaling down (the HPA
// treats missing metrics the same way): a silent pod never causes a scale-down.

export interface AutoscalingSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly targetUtilizationPercent: number;
  readonly scaleDownStabilizationSeconds: number;
}

export interface Recommendation {
  /** Unix ms. */
  readonly at: number;
  readonly replicas: number;
}

export interface AutoscalerInput {
  readonly spec: AutoscalingSpec;
  readonly capacityPerPod: number;
  /** spec.replicas now. */
  readonly currentReplicas: number;
  /** Sessions on transceivers that answered. */
  readonly knownSessions: number;
  /** Active transceivers whose session count is unknown. */
  readonly unknownPods: number;
  /** Recommendations made earlier (a fresh autoscaler starts from [{ now, currentReplicas }]). */
  readonly history: readonly Recommendation[];
  /** Unix ms. */
  readonly now: number;
}

export interface AutoscalerDecision {
  /** What spec.replicas should be. */
  readonly replicas: number;
  /** This pass's own recommendation, before stabilisation. */
  readonly recommendation: number;
  /** History to keep for the next pass (entries older than the window dropped). */
  readonly history: readonly Recommendation[];
  /** Unix ms when a scale-down held back by the window may go ahead, if one is held back. */
  readonly recheckAt: number | undefined;
}

/** Pods needed for `sessions` at the target utilisation (integer arithmetic: no 0.1 + 0.2 surprises). */
export function podsFor(sessions: number, capacityPerPod: number, targetPercent: number): number {
  if (sessions <= 0) return 0;
  return Math.ceil((sessions * 100) / (capacityPerPod * targetPercent));
}

export function recommend(input: AutoscalerInput): AutoscalerDecision {
  const { spec, now } = input;
  const clamp = (replicas: number) => Math.min(spec.maxReplicas, Math.max(spec.minReplicas, replicas));
  const perPodTarget = (input.capacityPerPod * spec.targetUtilizationPercent) / 100;
  const upward = podsFor(input.knownSessions, input.capacityPerPod, spec.targetUtilizationPercent);
  const downward = podsFor(
    input.knownSessions + Math.ceil(input.unknownPods * perPodTarget),
    input.capacityPerPod,
    spec.targetUtilizationPercent,
  );
  const current = input.currentReplicas;
  const raw = upward > current ? upward : Math.min(downward, current);
  const recommendation = clamp(raw);

  const windowMs = spec.scaleDownStabilizationSeconds * 1000;
  // Only the maximum over the window matters, so an entry is dropped once a later one is at least
  // as high: the history stays a short, strictly falling staircase however often this runs.
  const history = input.history.filter(
    (entry) => entry.at > now - windowMs && entry.replicas > recommendation,
  );
  history.push({ at: now, replicas: recommendation });
  if (recommendation >= current || current > spec.maxReplicas) {
    return { replicas: recommendation, recommendation, history, recheckAt: undefined };
  }
  const replicas = clamp(Math.min(current, Math.max(...history.map((entry) => entry.replicas))));
  // The next moment the answer can change: the oldest entry above the recommendation leaves the window.
  const recheckAt =
    replicas > recommendation
      ? Math.min(...history.slice(0, -1).map((entry) => entry.at)) + windowMs
      : undefined;
  return { replicas, recommendation, history, recheckAt };
}
