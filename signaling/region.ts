// Region-aware placement, pure (docs/global-tier.md): which region a caller is in, in which order
// the clusters are tried for it (nearest first, the next when one is full), and which relay
// addresses its answer advertises (the edge relay of its region, else the cluster's own relays).
import { type Cidr, cidrContains } from '../protocol/cidr.ts';

/** Region names: lower-case letters, digits and dashes (`eu-west`, `us`, `de`), as header values too. */
export const REGION_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export interface EdgeRelaySite {
  readonly region: string;
  /** The edge relay's public addresses (`ip:port` text), as the answer advertises them. */
  readonly relays: readonly string[];
  /** Its ICE-TCP addresses (`ip:port` text), advertised beside `relays`. */
  readonly tcpRelays: readonly string[];
  /** Callers from these addresses are in this edge's region (when no header says otherwise). */
  readonly clientCidrs: readonly Cidr[];
  /** The clusters this edge relay forwards to; undefined: every cluster. */
  readonly clusters: readonly number[] | undefined;
}

export interface RegionPolicy {
  /** Lower-case name of the request header that names the caller's region. */
  readonly header: string;
  /** The caller's region when neither the header nor the address says. */
  readonly defaultRegion: string | undefined;
  /** Caller region → cluster regions, nearest first. */
  readonly nearest: Readonly<Record<string, readonly string[]>>;
}

export type RegionSource = 'header' | 'address' | 'default' | 'none';

export interface CallerRegion {
  readonly region: string | undefined;
  readonly source: RegionSource;
}

/**
 * The caller's region: the header if it holds a well-formed region name (letter case ignored), else
 * the region of the first edge relay whose client ranges hold the caller's address, else the
 * default. A malformed header is ignored rather than refused: a region is a hint, not a credential.
 */
export function callerRegion(
  headerValue: string | readonly string[] | undefined,
  clientAddress: string,
  edges: readonly EdgeRelaySite[],
  policy: Pick<RegionPolicy, 'defaultRegion'>,
): CallerRegion {
  const value = typeof headerValue === 'string' ? headerValue.trim().toLowerCase() : undefined;
  if (value !== undefined && REGION_PATTERN.test(value)) return { region: value, source: 'header' };
  for (const edge of edges) {
    if (edge.clientCidrs.some((cidr) => cidrContains(cidr, clientAddress)))
      return { region: edge.region, source: 'address' };
  }
  if (policy.defaultRegion !== undefined) return { region: policy.defaultRegion, source: 'default' };
  return { region: undefined, source: 'none' };
}

/**
 * The order in which clusters are tried for a caller in `region`: the regions `nearest[region]`
 * lists, in that order (several clusters of one region keep their configured order); without such
 * a list, the clusters of the caller's own region first. Every other cluster follows in configured
 * order, so a call overflows anywhere before it is refused.
 */
export function clusterOrder<C extends { readonly clusterId: number; readonly region: string | undefined }>(
  clusters: readonly C[],
  region: string | undefined,
  nearest: Readonly<Record<string, readonly string[]>>,
): C[] {
  const preference = region === undefined ? [] : (nearest[region] ?? [region]);
  const rank = (cluster: C) => {
    const index = cluster.region === undefined ? -1 : preference.indexOf(cluster.region);
    return index === -1 ? preference.length : index;
  };
  // Array.prototype.sort is stable: equal ranks keep the configured order.
  return [...clusters].sort((a, b) => rank(a) - rank(b));
}

/**
 * The relay addresses an answer advertises for a session in `clusterId`: those of an edge relay in
 * the caller's region that forwards to that cluster, else the cluster's own.
 */
export function advertisedRelays(
  region: string | undefined,
  clusterId: number,
  cluster: { readonly relays: readonly string[]; readonly tcpRelays: readonly string[] },
  edges: readonly EdgeRelaySite[],
): { relays: readonly string[]; tcpRelays: readonly string[]; via: 'edge' | 'cluster' } {
  if (region !== undefined) {
    const edge = edges.find(
      (candidate) =>
        candidate.region === region &&
        (candidate.clusters === undefined || candidate.clusters.includes(clusterId)),
    );
    if (edge !== undefined) return { relays: edge.relays, tcpRelays: edge.tcpRelays, via: 'edge' };
  }
  return { relays: cluster.relays, tcpRelays: cluster.tcpRelays, via: 'cluster' };
}
