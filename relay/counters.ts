// Relay metrics live in one SharedArrayBuffer per worker: the packet path bumps a Float64Array slot
// (no call, no label lookup, no message to the main thread) and the main thread sums the workers'
// arrays when Prometheus scrapes. Single writer per array, so plain increments are safe; a scrape
// may read a value a few packets old, which is fine for monitoring.

/** Why a packet was not forwarded. Every drop is counted under exactly one of these. */
export const DROP_REASONS = [
  // from clients, on the public port
  'unclassified', // first byte outside the RFC 7983 ranges
  'unknown_flow', // DTLS/RTP from an address with no flow, and no Redis to ask
  'malformed_stun',
  'not_binding_request', // indications, responses and other methods never create flows
  'no_username',
  'bad_ufrag', // wrong length, alphabet or version
  'unknown_key',
  'bad_tag',
  'wrong_cluster',
  'unknown_transceiver',
  'transceiver_draining',
  'bad_integrity',
  'rate_limited',
  'flow_stun_rate_limited', // a known flow sending STUN faster than any ICE agent does (checks flood)
  'flow_table_full',
  'relay_draining',
  'redis_miss',
  'redis_error',
  'redis_busy',
  'hold_overflow',
  'candidate_overflow', // a candidate new path's packets past what its transceiver verifies before answering
  'candidate_table_full', // as many candidate new paths as the relay holds at once
  // from transceivers, on the tunnel sockets
  'tunnel_unknown_source',
  'tunnel_malformed',
  'tunnel_no_flow',
  // global relay tier
  'no_peer_relay', // a peer cluster's session, but none of its relays has an address family this relay can send to
  // from edge relays, on the public port (global relay tier)
  'edge_unknown_source', // a tunnel datagram from an address that is not a known edge relay
  'edge_malformed',
  // from clients, on the TCP port (ICE-TCP)
  'tcp_not_stun', // a connection's first packet is not STUN: it is closed
  'tcp_other_ufrag', // a check for another session on a connection that carries one already
  'tcp_flow_gone', // the connection's flow expired or its transceiver left: it is closed
  'tcp_handshake_timeout', // no valid first packet in time: closed
  'tcp_connection_limit', // the relay holds as many connections as it may: refused
  'tcp_source_limit', // the source address holds as many connections as it may: refused
  'tcp_frame_too_large', // a packet no ICE agent sends: the connection is closed
  'tcp_send_buffer_full', // a client that does not read fast enough: its packet is dropped
  // either way
  'send_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

const SCALARS = [
  'packets_to_transceiver',
  'bytes_to_transceiver',
  'packets_to_client',
  'bytes_to_client',
  'flows', // gauge
  'flows_created_stun',
  'flows_created_redis',
  'flows_created_ssrc', // a candidate new path (NAT rebinding) its transceiver sent to
  'candidates_created', // addresses sending a live session's SRTP, forwarded to its transceiver to verify
  'candidate_packets', // packets forwarded for candidate new paths
  'flows_expired',
  'flows_removed', // their transceiver left the routing table
  'redis_lookup_hit',
  'redis_lookup_miss',
  'redis_lookup_error',
  'redis_writes',
  'redis_write_errors',
  'routing_table_generation', // gauge: the generation this worker forwards with
  'redis_connected', // gauge: 1 while this worker's Redis connection is up
  'packets_to_peer', // client packets forwarded to a peer cluster's relays (edge role)
  'bytes_to_peer',
  'packets_to_edge', // packets for clients sent back through the edge relay they came through
  'bytes_to_edge',
  'tcp_connections', // gauge: open TCP connections (with a flow or still in their first packet)
  'tcp_connections_accepted',
  'tcp_packets_from_clients', // frames read from TCP clients and forwarded
  'tcp_packets_to_clients', // frames written to TCP clients
] as const;
export type ScalarCounter = (typeof SCALARS)[number];

export const COUNTER_SLOTS = SCALARS.length + DROP_REASONS.length;

const scalarSlot = new Map<string, number>(SCALARS.map((name, index) => [name, index]));
const dropSlot = new Map<string, number>(
  DROP_REASONS.map((reason, index) => [reason, SCALARS.length + index]),
);

export function slotOf(name: ScalarCounter): number {
  return scalarSlot.get(name)!;
}

export function dropSlotOf(reason: DropReason): number {
  return dropSlot.get(reason)!;
}

export function newCounters(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * Float64Array.BYTES_PER_ELEMENT));
}

export const SLOT = {
  packetsToTransceiver: slotOf('packets_to_transceiver'),
  bytesToTransceiver: slotOf('bytes_to_transceiver'),
  packetsToClient: slotOf('packets_to_client'),
  bytesToClient: slotOf('bytes_to_client'),
  flows: slotOf('flows'),
  flowsCreatedStun: slotOf('flows_created_stun'),
  flowsCreatedRedis: slotOf('flows_created_redis'),
  flowsCreatedSsrc: slotOf('flows_created_ssrc'),
  candidatesCreated: slotOf('candidates_created'),
  candidatePackets: slotOf('candidate_packets'),
  flowsExpired: slotOf('flows_expired'),
  flowsRemoved: slotOf('flows_removed'),
  redisLookupHit: slotOf('redis_lookup_hit'),
  redisLookupMiss: slotOf('redis_lookup_miss'),
  redisLookupError: slotOf('redis_lookup_error'),
  redisWrites: slotOf('redis_writes'),
  redisWriteErrors: slotOf('redis_write_errors'),
  routingTableGeneration: slotOf('routing_table_generation'),
  redisConnected: slotOf('redis_connected'),
  packetsToPeer: slotOf('packets_to_peer'),
  bytesToPeer: slotOf('bytes_to_peer'),
  packetsToEdge: slotOf('packets_to_edge'),
  bytesToEdge: slotOf('bytes_to_edge'),
  tcpConnections: slotOf('tcp_connections'),
  tcpConnectionsAccepted: slotOf('tcp_connections_accepted'),
  tcpPacketsFromClients: slotOf('tcp_packets_from_clients'),
  tcpPacketsToClients: slotOf('tcp_packets_to_clients'),
} as const;
