// Objects for the operator's unit tests: a cluster, a pool and transceiver pods as the pure logic
// sees them.
import {
  readTransceiverPool,
  readVoiceEdgeCluster,
  type TransceiverPool,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import type { ObservedTransceiverPod } from '../observed-transceiver-pod.ts';

export function cluster(spec: Record<string, unknown> = {}, name = 'edge'): VoiceEdgeCluster {
  const result = readVoiceEdgeCluster({
    apiVersion: 'voice-edge.io/v1alpha1',
    kind: 'VoiceEdgeCluster',
    metadata: { name, namespace: 'voice', uid: 'uid-cluster', generation: 1 },
    spec: { clusterId: 7, routingKeys: { secretName: 'keys' }, ...spec },
  });
  if (!result.ok) throw new Error(result.error);
  return result.object;
}

export function pool(spec: Record<string, unknown> = {}, name = 'echo'): TransceiverPool {
  const result = readTransceiverPool({
    apiVersion: 'voice-edge.io/v1alpha1',
    kind: 'TransceiverPool',
    metadata: { name, namespace: 'voice', uid: 'uid-pool', generation: 3 },
    spec: { clusterName: 'edge', backend: { url: 'ws://echo.voice:9000/session' }, ...spec },
  });
  if (!result.ok) throw new Error(result.error);
  return result.object;
}

export function pod(id: number, fields: Partial<ObservedTransceiverPod> = {}): ObservedTransceiverPod {
  return {
    name: `echo-${id}`,
    namespace: 'voice',
    uid: `uid-${id}`,
    cluster: 'edge',
    pool: 'echo',
    id,
    ownerUid: 'uid-pool',
    podIP: `10.88.0.${id}`,
    phase: 'Running',
    ready: true,
    terminating: false,
    draining: false,
    drainingSince: undefined,
    templateHash: 'current',
    createdAt: 1_000 + id,
    ...fields,
  };
}
