// The conditions of a TransceiverPool, from its plan and what blocked it: pure.
//   Ready       the wanted active transceivers exist, run the current template, are ready and
//               published in the routing table;
//   Progressing pods are being created, replaced or drained;
//   Degraded    something needs a person: the cluster is missing, pods cannot be created.
import type { ConditionState } from './api/conditions.ts';
import type { PoolPlanStatus } from './pool-plan.ts';

export interface PoolStatusInput {
  readonly invalidSpec: string | undefined;
  readonly deleting: boolean;
  /** Why pods cannot be built (cluster missing or invalid, no relay address), if so. */
  readonly blocked: { readonly reason: string; readonly message: string } | undefined;
  /** A create, delete or drain that failed in this pass. */
  readonly writeError: string | undefined;
  readonly replicas: number;
  readonly status: PoolPlanStatus;
  /** Ready active pods the published routing table does not list as active yet. */
  readonly unpublished: number;
}

export function poolConditions(input: PoolStatusInput): ConditionState[] {
  const none: ConditionState = { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' };
  if (input.invalidSpec !== undefined) {
    return [
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: input.invalidSpec },
      { type: 'Progressing', status: 'False', reason: 'InvalidSpec', message: 'waiting for a valid spec' },
      { type: 'Degraded', status: 'True', reason: 'InvalidSpec', message: input.invalidSpec },
    ];
  }
  const { status, replicas } = input;
  const counts = `${status.replicas} active (${status.readyReplicas} ready) of ${replicas} wanted, ${status.drainingReplicas} draining`;
  if (input.deleting) {
    const message = `deleting: draining ${status.replicas + status.drainingReplicas} transceivers first`;
    return [
      { type: 'Ready', status: 'False', reason: 'Deleting', message },
      { type: 'Progressing', status: 'True', reason: 'Deleting', message },
      input.writeError
        ? { type: 'Degraded', status: 'True', reason: 'WriteFailed', message: input.writeError }
        : none,
    ];
  }
  const complete =
    status.replicas === replicas &&
    status.readyReplicas >= replicas &&
    status.updatedReplicas === status.replicas &&
    input.unpublished === 0;
  let ready: ConditionState;
  if (input.blocked && !complete) {
    ready = { type: 'Ready', status: 'False', reason: input.blocked.reason, message: input.blocked.message };
  } else if (complete) {
    ready = { type: 'Ready', status: 'True', reason: 'TransceiversReady', message: counts };
  } else if (status.readyReplicas < Math.min(status.replicas, replicas) || status.replicas < replicas) {
    ready = { type: 'Ready', status: 'False', reason: 'TransceiversNotReady', message: counts };
  } else if (input.unpublished > 0) {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: 'NotPublished',
      message: `${input.unpublished} ready transceivers not yet in the routing table`,
    };
  } else {
    ready = { type: 'Ready', status: 'False', reason: 'Converging', message: counts };
  }

  let progressing: ConditionState;
  if (status.replicas < replicas)
    progressing = { type: 'Progressing', status: 'True', reason: 'ScalingUp', message: counts };
  else if (status.replicas > replicas) {
    progressing = { type: 'Progressing', status: 'True', reason: 'ScalingDown', message: counts };
  } else if (status.updatedReplicas < status.replicas) {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'RollingUpdate',
      message: `${status.updatedReplicas} of ${status.replicas} active transceivers run the current template`,
    };
  } else if (status.readyReplicas < replicas) {
    progressing = { type: 'Progressing', status: 'True', reason: 'WaitingForReadiness', message: counts };
  } else if (status.drainingReplicas > 0) {
    progressing = { type: 'Progressing', status: 'True', reason: 'Draining', message: counts };
  } else {
    progressing = { type: 'Progressing', status: 'False', reason: 'Stable', message: counts };
  }

  const problems: string[] = [];
  let reason = 'AsExpected';
  if (input.blocked) {
    reason = input.blocked.reason;
    problems.push(input.blocked.message);
  }
  if (input.writeError) {
    if (reason === 'AsExpected') reason = 'WriteFailed';
    problems.push(input.writeError);
  }
  const degraded: ConditionState =
    problems.length > 0 ? { type: 'Degraded', status: 'True', reason, message: problems.join('; ') } : none;
  return [ready, progressing, degraded];
}
