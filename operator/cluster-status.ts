// The conditions of a VoiceEdgeCluster, from what the reconcile found: pure.
//   Ready       relay and signaling available, relay addresses known, routing table published;
//   Progressing a Deployment is rolling out or not yet available;
//   Degraded    something needs a person: an object could not be applied, pods claim one ID, the
//               internal-API credential Secret cannot be read or created or holds no valid token.
import type { ConditionState } from './api/conditions.ts';

export interface DeploymentHealth {
  /** Minimum availability reached for the current spec (or nothing to run). */
  readonly available: boolean;
  /** The Deployment controller has not caught up with the spec yet. */
  readonly rollingOut: boolean;
  readonly message: string;
}

interface DeploymentLike {
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    conditions?: { type?: string; status?: string; message?: string }[];
  };
}

export function deploymentHealth(object: unknown, what: string): DeploymentHealth {
  const deployment = object as DeploymentLike | undefined;
  if (deployment === undefined)
    return { available: false, rollingOut: true, message: `${what} not created yet` };
  const wanted = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  const observed = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  const updated = (status.updatedReplicas ?? 0) >= wanted && (status.replicas ?? 0) <= wanted;
  const rollingOut = !observed || !updated;
  if (wanted === 0) return { available: true, rollingOut: false, message: `${what}: 0 replicas wanted` };
  const condition = status.conditions?.find((c) => c.type === 'Available');
  const available = observed && condition?.status === 'True';
  const counts = `${status.availableReplicas ?? 0}/${wanted} available`;
  return { available, rollingOut, message: `${what}: ${counts}${rollingOut ? ', rolling out' : ''}` };
}

export interface ClusterStatusInput {
  readonly deleting: boolean;
  readonly waitingForPools: readonly string[];
  readonly invalidSpec: string | undefined;
  readonly applyErrors: readonly string[];
  readonly relay: DeploymentHealth;
  readonly signaling: DeploymentHealth;
  readonly relayAddresses: readonly string[];
  readonly routingTablePublished: boolean;
  readonly routingConflicts: readonly string[];
  /** Why the internal-API credential is unusable (unreadable, not creatable, invalid), if it is. */
  readonly credentialError: string | undefined;
}

export function clusterConditions(input: ClusterStatusInput): ConditionState[] {
  if (input.invalidSpec !== undefined) {
    return [
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: input.invalidSpec },
      { type: 'Progressing', status: 'False', reason: 'InvalidSpec', message: 'waiting for a valid spec' },
      { type: 'Degraded', status: 'True', reason: 'InvalidSpec', message: input.invalidSpec },
    ];
  }
  if (input.deleting) {
    const message =
      input.waitingForPools.length > 0
        ? `deleting: waiting until no TransceiverPool names this cluster (${input.waitingForPools.join(', ')})`
        : 'deleting';
    return [
      { type: 'Ready', status: 'False', reason: 'Deleting', message },
      { type: 'Progressing', status: 'True', reason: 'Deleting', message },
      { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' },
    ];
  }
  const problems: string[] = [];
  let readyReason = 'Available';
  const notReady = (reason: string, message: string) => {
    if (readyReason === 'Available') readyReason = reason;
    problems.push(message);
  };
  if (input.applyErrors.length > 0)
    notReady('ApplyFailed', `could not apply: ${input.applyErrors.join('; ')}`);
  if (input.credentialError !== undefined)
    notReady('TransceiverApiCredentialUnavailable', input.credentialError);
  if (!input.relay.available) notReady('RelayUnavailable', input.relay.message);
  if (!input.signaling.available) notReady('SignalingUnavailable', input.signaling.message);
  if (input.relayAddresses.length === 0) {
    notReady(
      'RelayAddressesUnknown',
      'no relay address: set spec.relay.publicAddresses or wait for the relay Service to get a load-balancer IP',
    );
  }
  if (!input.routingTablePublished)
    notReady('RoutingTableNotPublished', 'the routing table is not published yet');
  const ready: ConditionState =
    problems.length === 0
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'Available',
          message: `relay and signaling available at ${input.relayAddresses.join(', ')}`,
        }
      : { type: 'Ready', status: 'False', reason: readyReason, message: problems.join('; ') };

  const rolling = [input.relay, input.signaling].filter((health) => health.rollingOut);
  const progressing: ConditionState =
    rolling.length > 0
      ? {
          type: 'Progressing',
          status: 'True',
          reason: 'RollingOut',
          message: rolling.map((h) => h.message).join('; '),
        }
      : input.relayAddresses.length === 0
        ? {
            type: 'Progressing',
            status: 'True',
            reason: 'WaitingForRelayAddresses',
            message: problems.join('; '),
          }
        : { type: 'Progressing', status: 'False', reason: 'Stable', message: 'everything is as specified' };

  const degradedBy: string[] = [];
  let degradedReason = 'AsExpected';
  if (input.applyErrors.length > 0) {
    degradedReason = 'ApplyFailed';
    degradedBy.push(`could not apply: ${input.applyErrors.join('; ')}`);
  }
  if (input.credentialError !== undefined) {
    if (degradedReason === 'AsExpected') degradedReason = 'TransceiverApiCredentialUnavailable';
    degradedBy.push(input.credentialError);
  }
  if (input.routingConflicts.length > 0) {
    if (degradedReason === 'AsExpected') degradedReason = 'RoutingConflict';
    degradedBy.push(
      `pods left out of the routing table because another pod holds their ID or address: ${input.routingConflicts.join(', ')}`,
    );
  }
  const degraded: ConditionState =
    degradedBy.length > 0
      ? { type: 'Degraded', status: 'True', reason: degradedReason, message: degradedBy.join('; ') }
      : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: '' };
  return [ready, progressing, degraded];
}
