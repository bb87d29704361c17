// The routing table of one VoiceEdgeCluster, built from its transceiver pods: one entry per pod that
// has an IP and is not terminating; and from its relay pods: their IPs are the relaySources
// transceivers accept tunnel datagrams from. The generation moves by one only when the content changes, so
// relays and signaling see a new generation exactly when something they act on changed.
import { isIPv4, isIPv6 } from 'node:net';
import { formatCidr, parseCidr } from '../protocol/cidr.ts';
import {
  parseRoutingTable,
  type RoutingTable,
  RoutingTableSchema,
  serializeRoutingTable,
} from '../protocol/routing-table.ts';
import { apiBaseUrl, type ObservedTransceiverPod, tunnelAddress } from './observed-transceiver-pod.ts';

export interface ClusterPeerSpec {
  readonly clusterId: number;
  readonly region?: string | undefined;
  readonly relays: readonly string[];
}

export interface RoutingTableInput {
  readonly clusterId: number;
  readonly peers: readonly ClusterPeerSpec[];
  /** Edge relays (IP or CIDR text) the cluster's relays accept tunnel traffic from. */
  readonly edgeRelays: readonly string[];
  /** The addresses the cluster's relays send tunnel datagrams from (`relaySourcesOf`). */
  readonly relaySources: readonly string[];
  readonly pods: readonly ObservedTransceiverPod[];
  /** The table as published now (parsed `routing.json`), if any. */
  readonly published: RoutingTable | undefined;
  /** The highest generation known from elsewhere (the cluster's status), so a deleted ConfigMap does not restart at 1. */
  readonly knownGeneration: number;
}

export interface RoutingTableResult {
  readonly table: RoutingTable;
  /** The plain JSON document to publish (`serializeRoutingTable`). */
  readonly document: unknown;
  /** True when the content differs from the published table (or nothing is published). */
  readonly changed: boolean;
  /** Pods left out because another pod already holds their ID or address (never expected). */
  readonly conflicts: readonly string[];
}

export function buildRoutingTable(input: RoutingTableInput): RoutingTableResult {
  // Oldest first: if two pods ever claim one ID or one address, the one that had it first keeps it.
  const candidates = input.pods
    .filter((pod) => pod.podIP !== undefined && !pod.terminating)
    .toSorted((a, b) => a.createdAt - b.createdAt || a.id - b.id || a.name.localeCompare(b.name));
  const ids = new Set<number>();
  const tunnels = new Set<string>();
  const conflicts: string[] = [];
  const entries: unknown[] = [];
  for (const pod of candidates) {
    const tunnel = tunnelAddress(pod.podIP!);
    if (ids.has(pod.id) || tunnels.has(tunnel)) {
      conflicts.push(pod.name);
      continue;
    }
    ids.add(pod.id);
    tunnels.add(tunnel);
    entries.push({
      id: pod.id,
      tunnel,
      api: apiBaseUrl(pod.podIP!),
      state: pod.draining ? 'draining' : 'active',
      ...(pod.draining && pod.drainingSince !== undefined ? { drainingSince: pod.drainingSince } : {}),
    });
  }
  entries.sort((a, b) => (a as { id: number }).id - (b as { id: number }).id);
  const peers = input.peers
    .filter((peer) => peer.clusterId !== input.clusterId)
    .map((peer) => ({
      clusterId: peer.clusterId,
      relays: [...peer.relays],
      ...(peer.region === undefined ? {} : { region: peer.region }),
    }));
  const draft = RoutingTableSchema.parse({
    clusterId: input.clusterId,
    generation: 0,
    transceivers: entries,
    peers,
    edgeRelays: [...input.edgeRelays],
    relaySources: [...input.relaySources],
  });
  const changed = input.published === undefined || contentKey(input.published) !== contentKey(draft);
  const base = Math.max(input.published?.generation ?? 0, input.knownGeneration);
  const generation = changed ? base + 1 : input.published!.generation;
  const table = { ...draft, generation };
  return { table, document: serializeRoutingTable(table), changed, conflicts };
}

/** Everything a watcher acts on: the table without its generation. */
function contentKey(table: RoutingTable): string {
  return JSON.stringify(serializeRoutingTable({ ...table, generation: 0 }));
}

/** The published `routing.json` text, parsed; undefined if absent or unreadable (it is then rewritten). */
export function readPublishedTable(text: string | undefined): RoutingTable | undefined {
  if (text === undefined) return undefined;
  try {
    const result = parseRoutingTable(JSON.parse(text));
    return result.ok ? result.table : undefined;
  } catch {
    return undefined;
  }
}

interface RelayPodLike {
  metadata?: { deletionTimestamp?: unknown };
  status?: { phase?: string; podIP?: string; podIPs?: { ip?: string }[] };
}

/**
 * The relaySources of the routing table: every IP of every relay pod that has one (scheduled and
 * started; relays send tunnel datagrams from their pod IP), each as a single-address CIDR, sorted
 * and without duplicates, so the table changes only when a relay pod comes, goes or is replaced.
 * A terminating relay is kept while it has its IP: it still forwards during its grace period. One
 * whose containers have stopped for good (Succeeded, Failed) sends nothing and is left out.
 */
export function relaySourcesOf(pods: readonly unknown[]): string[] {
  const sources = new Set<string>();
  for (const object of pods) {
    const pod = object as RelayPodLike;
    const phase = pod?.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const ips = [pod?.status?.podIP, ...(pod?.status?.podIPs ?? []).map((entry) => entry?.ip)];
    for (const ip of ips) {
      if (typeof ip !== 'string' || !(isIPv4(ip) || isIPv6(ip))) continue;
      sources.add(formatCidr(parseCidr(ip)));
    }
  }
  return [...sources].sort(compareCidrText);
}

/** IPv4 before IPv6, then by address bytes: a stable order that reads naturally. */
function compareCidrText(a: string, b: string): number {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return x.family - y.family;
  return Buffer.compare(Buffer.from(x.network), Buffer.from(y.network)) || x.prefixLength - y.prefixLength;
}
