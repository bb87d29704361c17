// Prometheus metrics of the signaling service.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Availability } from './status-cache.ts';

export interface SignalingMetrics {
  readonly registry: Registry;
  /** route: the route pattern (`/whip`, `/whip/sessions/:id`, …) or `unmatched`. */
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly offerToAnswer: Histogram;
  readonly statusPollErrors: Counter<'transceiver'>;
  readonly sessionsPlaced: Counter<'transceiver'>;
  /** Sessions placed, by cluster, by the relay the answer advertised and by first choice or overflow. */
  readonly placements: Counter<'cluster' | 'relay' | 'choice'>;
  readonly noCapacity: Counter;
  /** Offers refused before placement, by reason (rate-limited, too-many-sessions, offer-too-complex, bad-sdp). */
  readonly offersRefused: Counter<'reason'>;
  /** Clients this replica tracks for its per-client limits, and the sessions it remembers for them. */
  readonly limitedClients: Gauge<'kind'>;
  /** Session records re-checked with their transceiver while a client was at its cap, by outcome. */
  readonly sessionRechecks: Counter<'outcome'>;
  /** Calls to transceivers that failed or were refused, by operation and outcome. */
  readonly transceiverErrors: Counter<'operation' | 'outcome'>;
  readonly routingTableErrors: Counter;
  readonly routingTableGeneration: Gauge;
  /** With several clusters: the generation of each cluster's table in force. */
  readonly clusterRoutingTableGeneration: Gauge<'cluster'>;
  /** Restarts of the Kubernetes watch of the routing-table ConfigMap, by reason. */
  readonly routingWatchRestarts: Counter<'reason'>;
}

export function createSignalingMetrics(availability: () => Record<Availability, number>): SignalingMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'voice_edge_signaling_' });
  new Gauge({
    name: 'voice_edge_signaling_transceivers',
    help: 'Transceivers with an API URL in the routing table, by what their last status says',
    labelNames: ['availability'],
    registers: [registry],
    collect() {
      for (const [label, count] of Object.entries(availability())) this.set({ availability: label }, count);
    },
  });
  return {
    registry,
    requests: new Counter({
      name: 'voice_edge_signaling_requests_total',
      help: 'HTTP requests to the WHIP server, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    offerToAnswer: new Histogram({
      name: 'voice_edge_signaling_offer_to_answer_seconds',
      help: 'From a WHIP offer received to its answer sent (successful POST /whip only), seconds',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    statusPollErrors: new Counter({
      name: 'voice_edge_signaling_status_poll_errors_total',
      help: 'Failed GET /status polls, by transceiver ID',
      labelNames: ['transceiver'],
      registers: [registry],
    }),
    sessionsPlaced: new Counter({
      name: 'voice_edge_signaling_sessions_placed_total',
      help: 'Sessions created, by transceiver ID',
      labelNames: ['transceiver'],
      registers: [registry],
    }),
    placements: new Counter({
      name: 'voice_edge_signaling_placements_total',
      help: 'Sessions placed, by cluster, by the relay advertised (edge or cluster) and by choice (first: the nearest cluster; overflow: a later one because the nearer were full)',
      labelNames: ['cluster', 'relay', 'choice'],
      registers: [registry],
    }),
    noCapacity: new Counter({
      name: 'voice_edge_signaling_no_capacity_total',
      help: 'Offers refused with 503 no-capacity (no active transceiver with room)',
      registers: [registry],
    }),
    offersRefused: new Counter({
      name: 'voice_edge_signaling_offers_refused_total',
      help: 'Offers refused before any transceiver saw them, by reason: rate-limited, too-many-sessions (429), offer-too-complex, bad-sdp (400)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    limitedClients: new Gauge({
      name: 'voice_edge_signaling_client_limits',
      help: 'Per-client limit state of this replica: clients tracked, sessions remembered, clients evicted since start (past limits.perClient.maxClients)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    sessionRechecks: new Counter({
      name: 'voice_edge_signaling_session_rechecks_total',
      help: "A client's sessions asked about (GET /sessions/:id) while it was at its session cap, by outcome: alive, gone, unknown (no answer: counted as alive)",
      labelNames: ['outcome'],
      registers: [registry],
    }),
    transceiverErrors: new Counter({
      name: 'voice_edge_signaling_transceiver_errors_total',
      help: 'Calls to transceivers that did not succeed, by operation (create, update, delete) and outcome',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    }),
    routingTableErrors: new Counter({
      name: 'voice_edge_signaling_routing_table_errors_total',
      help: 'Routing table updates rejected (the previous table stays in force)',
      registers: [registry],
    }),
    clusterRoutingTableGeneration: new Gauge({
      name: 'voice_edge_signaling_cluster_routing_table_generation',
      help: 'Generation of each cluster’s routing table in force (signaling with several clusters)',
      labelNames: ['cluster'],
      registers: [registry],
    }),
    routingTableGeneration: new Gauge({
      name: 'voice_edge_signaling_routing_table_generation',
      help: 'Generation of the routing table in force',
      registers: [registry],
    }),
    routingWatchRestarts: new Counter({
      name: 'voice_edge_signaling_routing_watch_restarts_total',
      help: 'Restarts of the routing-table ConfigMap watch: closed (normal), expired (410, relist), error (backoff)',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
