// Prometheus metrics of the relay: the workers' shared counters summed at scrape time, plus what the
// main thread knows (routing table generation and errors, readiness).
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { DROP_REASONS, dropSlotOf, SLOT } from './counters.ts';

export interface RelayMetrics {
  readonly registry: Registry;
  readonly routingTableErrors: Counter;
  /** Restarts of the Kubernetes watch of the routing-table ConfigMap, by reason. */
  readonly routingWatchRestarts: Counter<'reason'>;
  readonly keyringErrors: Counter;
}

export function createRelayMetrics(workerCounters: () => readonly Float64Array[]): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'voice_edge_relay_' });
  const sum = (slot: number) => workerCounters().reduce((total, counters) => total + counters[slot]!, 0);
  // prom-client counters cannot be set; the workers own the running totals, so each scrape resets
  // the counter and adds the current sum.
  const summed = (name: string, help: string, labelName: string, slots: Record<string, number>) =>
    new Counter({
      name,
      help,
      labelNames: [labelName],
      registers: [registry],
      collect() {
        this.reset();
        for (const [label, slot] of Object.entries(slots)) this.inc({ [labelName]: label }, sum(slot));
      },
    });
  const single = (name: string, help: string, slot: number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sum(slot));
      },
    });

  summed('voice_edge_relay_packets_total', 'Packets forwarded, by direction', 'direction', {
    to_transceiver: SLOT.packetsToTransceiver,
    to_client: SLOT.packetsToClient,
    to_peer: SLOT.packetsToPeer,
    to_edge: SLOT.packetsToEdge,
  });
  summed(
    'voice_edge_relay_bytes_total',
    'Payload bytes forwarded (without tunnel headers), by direction',
    'direction',
    {
      to_transceiver: SLOT.bytesToTransceiver,
      to_client: SLOT.bytesToClient,
      to_peer: SLOT.bytesToPeer,
      to_edge: SLOT.bytesToEdge,
    },
  );
  summed(
    'voice_edge_relay_drops_total',
    'Packets not forwarded, by reason',
    'reason',
    Object.fromEntries(DROP_REASONS.map((reason) => [reason, dropSlotOf(reason)])),
  );
  summed('voice_edge_relay_flows_created_total', 'Flows created, by cause', 'cause', {
    stun: SLOT.flowsCreatedStun,
    redis: SLOT.flowsCreatedRedis,
    ssrc: SLOT.flowsCreatedSsrc,
  });
  single(
    'voice_edge_relay_path_candidates_total',
    "Addresses with no flow that sent a live session's SRTP (NAT rebinding), forwarded to its transceiver to verify",
    SLOT.candidatesCreated,
  );
  single(
    'voice_edge_relay_path_candidate_packets_total',
    'Packets forwarded for candidate new paths before their flow was made',
    SLOT.candidatePackets,
  );
  single('voice_edge_relay_flows_expired_total', 'Flows removed after the idle timeout', SLOT.flowsExpired);
  single(
    'voice_edge_relay_flows_removed_total',
    'Flows removed because their transceiver left the table',
    SLOT.flowsRemoved,
  );
  summed(
    'voice_edge_relay_redis_lookups_total',
    'Flow cache lookups for unknown addresses, by result',
    'result',
    {
      hit: SLOT.redisLookupHit,
      miss: SLOT.redisLookupMiss,
      error: SLOT.redisLookupError,
    },
  );
  single('voice_edge_relay_redis_writes_total', 'Flow records written to Redis', SLOT.redisWrites);
  single(
    'voice_edge_relay_redis_write_errors_total',
    'Flow records that failed to reach Redis',
    SLOT.redisWriteErrors,
  );
  new Gauge({
    name: 'voice_edge_relay_flows',
    help: 'Flows in the flow tables of all workers',
    registers: [registry],
    collect() {
      this.set(sum(SLOT.flows));
    },
  });
  summed(
    'voice_edge_relay_tcp_packets_total',
    'Packets carried on ICE-TCP connections, by direction',
    'direction',
    {
      from_client: SLOT.tcpPacketsFromClients,
      to_client: SLOT.tcpPacketsToClients,
    },
  );
  single(
    'voice_edge_relay_tcp_connections_accepted_total',
    'TCP connections accepted (before their first packet is checked)',
    SLOT.tcpConnectionsAccepted,
  );
  new Gauge({
    name: 'voice_edge_relay_tcp_connections',
    help: 'Open ICE-TCP connections',
    registers: [registry],
    collect() {
      this.set(sum(SLOT.tcpConnections));
    },
  });
  new Gauge({
    name: 'voice_edge_relay_redis_connected_workers',
    help: 'Workers whose Redis connection is up',
    registers: [registry],
    collect() {
      this.set(sum(SLOT.redisConnected));
    },
  });
  new Gauge({
    name: 'voice_edge_relay_routing_table_generation',
    help: 'Generation of the routing table every worker forwards with (the lowest, while an update spreads)',
    registers: [registry],
    collect() {
      const generations = workerCounters().map((counters) => counters[SLOT.routingTableGeneration]!);
      this.set(generations.length === 0 ? 0 : Math.min(...generations));
    },
  });
  new Gauge({
    name: 'voice_edge_relay_workers',
    help: 'Worker threads forwarding packets',
    registers: [registry],
    collect() {
      this.set(workerCounters().length);
    },
  });
  return {
    registry,
    routingTableErrors: new Counter({
      name: 'voice_edge_relay_routing_table_errors_total',
      help: 'Routing table updates rejected (the previous table stays in force)',
      registers: [registry],
    }),
    routingWatchRestarts: new Counter({
      name: 'voice_edge_relay_routing_watch_restarts_total',
      help: 'Restarts of the routing-table ConfigMap watch: closed (normal), expired (410, relist), error (backoff)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    keyringErrors: new Counter({
      name: 'voice_edge_relay_keyring_errors_total',
      help: 'Routing key updates rejected (the previous keys stay in force)',
      registers: [registry],
    }),
  };
}
