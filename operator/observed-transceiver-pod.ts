// A transceiver pod as the operator's pure logic sees it: read from the API object defensively (a
// pod whose labels were edited by hand is skipped, not trusted).
import { isIPv4, isIPv6 } from 'node:net';
import { formatHostPort, originOf } from '../protocol/host-port.ts';
import {
  ANNOTATION_DRAINING_SINCE,
  ANNOTATION_TEMPLATE_HASH,
  LABEL_INSTANCE,
  LABEL_POOL,
  TRANSCEIVER_API_PORT,
  TRANSCEIVER_TUNNEL_PORT,
  transceiverIdOf,
} from './api/v1alpha1.ts';

export interface ObservedTransceiverPod {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly cluster: string;
  readonly pool: string;
  readonly id: number;
  /** UID of the controller owner (the TransceiverPool), if any. */
  readonly ownerUid: string | undefined;
  readonly podIP: string | undefined;
  readonly phase: string;
  /** The pod's Ready condition is True. */
  readonly ready: boolean;
  /** deletionTimestamp is set. */
  readonly terminating: boolean;
  /** The draining-since annotation is present (its value may still be unreadable). */
  readonly draining: boolean;
  /** Unix seconds from the annotation; undefined if absent or unreadable. */
  readonly drainingSince: number | undefined;
  readonly templateHash: string | undefined;
  /** Unix milliseconds. */
  readonly createdAt: number;
}

interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
    creationTimestamp?: unknown;
    ownerReferences?: { uid?: string; controller?: boolean }[];
  };
  status?: { podIP?: string; phase?: string; conditions?: { type?: string; status?: string }[] };
}

/** The pod as a transceiver, or undefined if it lacks a name, cluster, pool or valid ID label. */
export function readTransceiverPod(object: unknown): ObservedTransceiverPod | undefined {
  const pod = object as PodLike;
  const meta = pod?.metadata;
  const name = meta?.name;
  const id = transceiverIdOf(meta?.labels);
  const cluster = meta?.labels?.[LABEL_INSTANCE];
  const pool = meta?.labels?.[LABEL_POOL];
  if (!name || id === undefined || !cluster || !pool) return undefined;
  const drainingText = meta?.annotations?.[ANNOTATION_DRAINING_SINCE];
  const drainingSince =
    drainingText !== undefined && /^[0-9]{1,10}$/.test(drainingText) && Number(drainingText) <= 0xffffffff
      ? Number(drainingText)
      : undefined;
  const podIP = pod.status?.podIP;
  const created = Date.parse(String(meta?.creationTimestamp ?? ''));
  return {
    name,
    namespace: meta?.namespace ?? '',
    uid: meta?.uid ?? '',
    cluster,
    pool,
    id,
    ownerUid: meta?.ownerReferences?.find((reference) => reference.controller)?.uid,
    podIP: podIP && (isIPv4(podIP) || isIPv6(podIP)) ? podIP : undefined,
    phase: pod.status?.phase ?? 'Pending',
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    terminating: meta?.deletionTimestamp !== undefined && meta?.deletionTimestamp !== null,
    draining: drainingText !== undefined,
    drainingSince,
    templateHash: meta?.annotations?.[ANNOTATION_TEMPLATE_HASH],
    createdAt: Number.isFinite(created) ? created : 0,
  };
}

/** The routing table's tunnel address of a pod: `10.88.0.9:7000`, `[fd00::9]:7000`. */
export function tunnelAddress(ip: string): string {
  return formatHostPort(ip, TRANSCEIVER_TUNNEL_PORT);
}

/** The routing table's API URL of a pod: `http://10.88.0.9:8090`, `http://[fd00::9]:8090`. */
export function apiBaseUrl(ip: string): string {
  return originOf('http', ip, TRANSCEIVER_API_PORT);
}

/** A pod that can hold no sessions any more: its containers have stopped for good. */
export function hasFinished(pod: ObservedTransceiverPod): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}
