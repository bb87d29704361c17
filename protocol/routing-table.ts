// The routing table: which transceiver IDs exist in a cluster, where their tunnel sockets are and
// whether they take new sessions. Published by the operator (or a file in local mode), watched by
// relays and signaling. It holds no load figures and no keys: it changes only when pools change.
import { z } from 'zod';
import { formatTransportAddress } from './address.ts';
import { CidrSchema, formatCidr } from './cidr.ts';
import { formatIssues, TransportAddressSchema } from './schema.ts';

const clusterId = z.number().int().min(0).max(0xffff);

export const TransceiverState = z.enum(['active', 'draining']);
export type TransceiverState = z.infer<typeof TransceiverState>;

const transceiverEntry = z.strictObject({
  id: z.number().int().min(0).max(0xffffffff),
  tunnel: TransportAddressSchema,
  state: TransceiverState,
  /**
   * When draining began (Unix seconds). Sessions whose ufrag was issued later get no new flows.
   * Optional: a relay that first sees the state without it uses the moment it saw it.
   */
  drainingSince: z.number().int().min(0).max(0xffffffff).optional(),
  /** Internal HTTP API of the transceiver (signaling uses it); optional for relays. */
  api: z.url().optional(),
});

/** Another cluster of the global relay tier: its ID, its relays' public addresses, its region. */
export const PeerClusterSchema = z.strictObject({
  clusterId,
  relays: z.array(TransportAddressSchema).min(1),
  region: z.string().min(1).optional(),
});

export const RoutingTableSchema = z
  .strictObject({
    clusterId,
    /** Increases with every published change; relays report it as a metric. */
    generation: z.number().int().min(0).default(0),
    transceivers: z.array(transceiverEntry).default([]),
    /** Other clusters (global relay tier): this cluster's relays forward their sessions to `relays`. */
    peers: z.array(PeerClusterSchema).default([]),
    /**
     * Edge relays (addresses or CIDRs) whose tunnel datagrams this cluster's relays accept on their
     * public port. Empty (the default): no edge relay may send to this cluster.
     */
    edgeRelays: z.array(CidrSchema).default([]),
    /**
     * The addresses (or CIDRs) this cluster's relays send tunnel datagrams from: transceivers accept
     * tunnel datagrams from these (and their own configured `tunnel.allowedRelays`) only, and count
     * the rest as dropped (docs/security.md). The operator publishes its relay pods' IPs here.
     */
    relaySources: z.array(CidrSchema).default([]),
  })
  .superRefine((table, context) => {
    const seenIds = new Set<number>();
    const seenTunnels = new Set<string>();
    table.transceivers.forEach((entry, index) => {
      if (seenIds.has(entry.id)) {
        context.addIssue({
          code: 'custom',
          path: ['transceivers', index, 'id'],
          message: `duplicate id ${entry.id}`,
        });
      }
      const tunnel = formatTransportAddress(entry.tunnel);
      if (seenTunnels.has(tunnel)) {
        context.addIssue({
          code: 'custom',
          path: ['transceivers', index, 'tunnel'],
          message: `duplicate ${tunnel}`,
        });
      }
      if (entry.drainingSince !== undefined && entry.state !== 'draining') {
        context.addIssue({
          code: 'custom',
          path: ['transceivers', index, 'drainingSince'],
          message: 'only a draining transceiver has drainingSince',
        });
      }
      seenIds.add(entry.id);
      seenTunnels.add(tunnel);
    });
    table.peers.forEach((peer, index) => {
      if (peer.clusterId === table.clusterId) {
        context.addIssue({
          code: 'custom',
          path: ['peers', index, 'clusterId'],
          message: 'a peer cannot be this cluster',
        });
      }
    });
  });

export type RoutingTable = z.output<typeof RoutingTableSchema>;
export type TransceiverEntry = RoutingTable['transceivers'][number];

export type RoutingTableResult = { ok: true; table: RoutingTable } | { ok: false; error: string };

/** Validates untrusted input (parsed YAML/JSON); the error names the offending field. */
export function parseRoutingTable(input: unknown): RoutingTableResult {
  const result = RoutingTableSchema.safeParse(input);
  if (result.success) return { ok: true, table: result.data };
  return { ok: false, error: formatIssues(result.error) };
}

/** The table as plain JSON again (addresses as text), for publishing. */
export function serializeRoutingTable(table: RoutingTable): unknown {
  return {
    clusterId: table.clusterId,
    generation: table.generation,
    transceivers: table.transceivers.map((entry) => ({
      id: entry.id,
      tunnel: formatTransportAddress(entry.tunnel),
      state: entry.state,
      ...(entry.drainingSince === undefined ? {} : { drainingSince: entry.drainingSince }),
      ...(entry.api === undefined ? {} : { api: entry.api }),
    })),
    peers: table.peers.map((peer) => ({
      clusterId: peer.clusterId,
      relays: peer.relays.map(formatTransportAddress),
      ...(peer.region === undefined ? {} : { region: peer.region }),
    })),
    ...(table.edgeRelays.length === 0 ? {} : { edgeRelays: table.edgeRelays.map(formatCidr) }),
    ...(table.relaySources.length === 0 ? {} : { relaySources: table.relaySources.map(formatCidr) }),
  };
}
