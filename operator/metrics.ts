// Prometheus metrics of the operator (prefix voice_edge_operator_).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly reconcileDuration: Histogram<'kind'>;
  readonly reconcileErrors: Counter<'kind'>;
  readonly watchRestarts: Counter<'resource' | 'cause'>;
  readonly leader: Gauge;
  readonly transceivers: Gauge<'namespace' | 'pool' | 'state'>;
  readonly sessions: Gauge<'namespace' | 'pool'>;
  readonly routingTableGeneration: Gauge<'namespace' | 'cluster'>;
  readonly routingTablePublishes: Counter<'namespace' | 'cluster'>;
  readonly idAllocations: Counter<'namespace' | 'cluster'>;
  readonly statusPolls: Counter<'outcome'>;
  readonly drainRequests: Counter<'outcome'>;
  readonly events: Counter<'type' | 'reason'>;
  readonly eventsDropped: Counter<'why'>;
  readonly queueDepth: Gauge;
}

export function createOperatorMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'voice_edge_operator_' });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: 'voice_edge_operator_reconciles_total',
      help: 'Reconciles, by kind and result (ok or error)',
      labelNames: ['kind', 'result'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'voice_edge_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took, by kind',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'voice_edge_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were requeued with backoff, by kind',
      labelNames: ['kind'],
      registers,
    }),
    watchRestarts: new Counter({
      name: 'voice_edge_operator_watch_restarts_total',
      help: 'List/watch restarts, by resource and cause (error: backoff, expired: 410 relist)',
      labelNames: ['resource', 'cause'],
      registers,
    }),
    leader: new Gauge({
      name: 'voice_edge_operator_leader',
      help: '1 while this replica leads (reconciles), 0 while it stands by',
      registers,
    }),
    transceivers: new Gauge({
      name: 'voice_edge_operator_transceivers',
      help: 'Transceiver pods per pool and state (active, draining)',
      labelNames: ['namespace', 'pool', 'state'],
      registers,
    }),
    sessions: new Gauge({
      name: 'voice_edge_operator_sessions',
      help: "Live sessions per pool, from the transceivers' /status",
      labelNames: ['namespace', 'pool'],
      registers,
    }),
    routingTableGeneration: new Gauge({
      name: 'voice_edge_operator_routing_table_generation',
      help: 'Generation of the routing table last published, per cluster',
      labelNames: ['namespace', 'cluster'],
      registers,
    }),
    routingTablePublishes: new Counter({
      name: 'voice_edge_operator_routing_table_publishes_total',
      help: 'Routing table publications (content changes), per cluster',
      labelNames: ['namespace', 'cluster'],
      registers,
    }),
    idAllocations: new Counter({
      name: 'voice_edge_operator_id_allocations_total',
      help: 'Transceiver IDs allocated from the ledger, per cluster',
      labelNames: ['namespace', 'cluster'],
      registers,
    }),
    statusPolls: new Counter({
      name: 'voice_edge_operator_status_polls_total',
      help: "GET /status of transceivers, by outcome (ok, error, mismatch: another transceiver's ID)",
      labelNames: ['outcome'],
      registers,
    }),
    drainRequests: new Counter({
      name: 'voice_edge_operator_drain_requests_total',
      help: 'POST /drain to transceivers, by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    events: new Counter({
      name: 'voice_edge_operator_events_total',
      help: 'Kubernetes Events recorded, by type and reason',
      labelNames: ['type', 'reason'],
      registers,
    }),
    eventsDropped: new Counter({
      name: 'voice_edge_operator_events_dropped_total',
      help: 'Events not recorded, by why (rate: over the rate bound, failed: the API refused)',
      labelNames: ['why'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'voice_edge_operator_queue_depth',
      help: 'Objects waiting to be reconciled',
      registers,
    }),
  };
}
