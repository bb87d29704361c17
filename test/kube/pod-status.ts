// The test kubelet's pure pod logic: a pod's status document from what its containers are doing, the
// restart decision and its back-off. Times are passed in, so all of it is testable without processes.

export type ContainerState =
  | { readonly kind: 'waiting'; readonly reason: string; readonly message?: string }
  | { readonly kind: 'running'; readonly startedAt: number }
  | {
      readonly kind: 'terminated';
      readonly exitCode: number;
      readonly signal?: number;
      readonly reason: string;
      readonly message?: string;
      readonly startedAt: number;
      readonly finishedAt: number;
    };

export interface ContainerRecord {
  readonly name: string;
  readonly image: string;
  readonly state: ContainerState;
  readonly lastTermination?: Extract<ContainerState, { kind: 'terminated' }>;
  readonly restartCount: number;
  readonly ready: boolean;
  /** Whether it will run again after terminating (restart policy). */
  readonly willRestart: boolean;
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export function shouldRestart(policy: RestartPolicy, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/**
 * Delay before restart number `restartCount + 1`: 1 s doubling to 60 s (the kubelet's 10 s…5 min, scaled
 * for tests), back to 1 s once a container ran for a minute.
 */
export function restartDelayMs(restartCount: number, ranForMs: number): number {
  if (ranForMs >= 60_000) return 1000;
  return Math.min(60_000, 1000 * 2 ** Math.min(restartCount, 6));
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export function podPhase(containers: readonly ContainerRecord[]): PodPhase {
  if (containers.length === 0) return 'Pending';
  const finished = containers.every((c) => c.state.kind === 'terminated' && !c.willRestart);
  if (finished) {
    return containers.every((c) => c.state.kind === 'terminated' && c.state.exitCode === 0)
      ? 'Succeeded'
      : 'Failed';
  }
  const started = containers.some(
    (c) => c.state.kind === 'running' || c.state.kind === 'terminated' || c.lastTermination !== undefined,
  );
  return started ? 'Running' : 'Pending';
}

export interface PodStatusInput {
  readonly podUid: string;
  readonly podIP: string | undefined;
  readonly hostIP: string;
  readonly startTime: number;
  readonly initialized: boolean;
  readonly containers: readonly ContainerRecord[];
  /** The pod's current status.conditions: a condition keeps its lastTransitionTime while unchanged. */
  readonly previousConditions: ReadonlyArray<{
    type?: string;
    status?: string;
    lastTransitionTime?: unknown;
  }>;
  readonly now: number;
}

/** The status document the kubelet writes (JSON, times as RFC 3339 seconds). */
export function podStatus(input: PodStatusInput): Record<string, unknown> {
  const phase = podPhase(input.containers);
  const containersReady = input.containers.length > 0 && input.containers.every((c) => c.ready);
  const condition = (type: string, ok: boolean, reason?: string) => {
    const status = ok ? 'True' : 'False';
    const previous = input.previousConditions.find((c) => c.type === type);
    const lastTransitionTime =
      previous?.status === status && previous.lastTransitionTime
        ? normaliseTime(previous.lastTransitionTime)
        : time(input.now);
    return { type, status, lastProbeTime: null, lastTransitionTime, ...(ok || !reason ? {} : { reason }) };
  };
  const notReady = phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady';
  return {
    phase,
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    ...(input.podIP ? { podIP: input.podIP, podIPs: [{ ip: input.podIP }] } : {}),
    startTime: time(input.startTime),
    conditions: [
      condition('PodReadyToStartContainers', input.podIP !== undefined),
      condition('Initialized', input.initialized),
      condition('Ready', containersReady, notReady),
      condition('ContainersReady', containersReady, notReady),
      condition('PodScheduled', true),
    ],
    containerStatuses: input.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      containerID: `testkubelet://${input.podUid}/${c.name}/${c.restartCount}`,
      ready: c.ready,
      started: c.state.kind === 'running',
      restartCount: c.restartCount,
      state: stateDocument(c.state),
      lastState: c.lastTermination ? stateDocument(c.lastTermination) : {},
    })),
  };
}

function stateDocument(state: ContainerState): Record<string, unknown> {
  switch (state.kind) {
    case 'waiting':
      return { waiting: { reason: state.reason, ...(state.message ? { message: state.message } : {}) } };
    case 'running':
      return { running: { startedAt: time(state.startedAt) } };
    case 'terminated':
      return {
        terminated: {
          exitCode: state.exitCode,
          ...(state.signal !== undefined ? { signal: state.signal } : {}),
          reason: state.reason,
          ...(state.message ? { message: state.message } : {}),
          startedAt: time(state.startedAt),
          finishedAt: time(state.finishedAt),
          containerID: '',
        },
      };
  }
}

export function time(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function normaliseTime(value: unknown): string {
  return value instanceof Date ? time(value.getTime()) : String(value);
}
