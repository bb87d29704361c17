// Status conditions as Kubernetes tools read them (`kubectl wait --for=condition=Ready`, Argo CD):
// each carries the generation it describes, and its lastTransitionTime moves only when its status
// does, so a condition that merely changes reason or message keeps its age.
import type { Condition, ConditionType } from './v1alpha1.ts';

export interface ConditionState {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  /** CamelCase, stable: tools match on it. */
  readonly reason: string;
  readonly message: string;
}

/**
 * The new conditions list: one entry per `desired` type (in that order), then any condition of
 * another type that was already there (someone else's). `now` becomes lastTransitionTime only for
 * a condition that is new or whose status changed.
 */
export function mergeConditions(
  existing: readonly Condition[] | undefined,
  desired: readonly ConditionState[],
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  const previous = new Map((existing ?? []).map((condition) => [condition.type, condition]));
  const merged: Condition[] = desired.map((state) => {
    const before = previous.get(state.type);
    const lastTransitionTime =
      before !== undefined && before.status === state.status ? before.lastTransitionTime : formatTime(now);
    return {
      type: state.type,
      status: state.status,
      ...(observedGeneration === undefined ? {} : { observedGeneration }),
      lastTransitionTime,
      reason: state.reason,
      message: state.message,
    };
  });
  const desiredTypes = new Set<string>(desired.map((state) => state.type));
  for (const condition of existing ?? []) if (!desiredTypes.has(condition.type)) merged.push(condition);
  return merged;
}

/** Kubernetes `Time`: RFC 3339 with whole seconds. */
export function formatTime(time: Date): string {
  return `${time.toISOString().slice(0, 19)}Z`;
}
