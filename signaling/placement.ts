// Placing a checked offer: the clusters in the caller's order, in each the transceivers ranked by
// room, tried one after the other until one creates the session. Full, draining or unreachable
// transceivers are skipped (and their status noted); an offer the transceiver refuses or an error
// it cannot explain ends the placement. The WHIP route turns the outcome into its answer.
import type { Logger } from 'pino';
import type { RoutingTable } from '../protocol/routing-table.ts';
import type { SignalingMetrics } from './metrics.ts';
import { describeSkipped, rankTransceivers, type StatusView } from './pick.ts';
import { advertisedRelays, type CallerRegion, clusterOrder, type EdgeRelaySite } from './region.ts';
import {
  type CreatedSession,
  type TransceiverClient,
  type TransceiverReply,
  transceiverProblem,
} from './transceiver-client.ts';

/** What the WHIP routes learn about and report to the transceivers' status (a StatusCache). */
export interface StatusBook {
  view(id: number): StatusView | undefined;
  notePlaced(id: number): void;
  markFull(id: number): void;
  markDraining(id: number): void;
  markUnreachable(id: number, reason: string): void;
}

export type TransceiverApi = Pick<
  TransceiverClient,
  'createSession' | 'updateSession' | 'deleteSession' | 'getSession'
>;

/** One cluster signaling places calls in (several with `clusters`: docs/global-tier.md). */
export interface PlacementCluster {
  readonly clusterId: number;
  readonly region: string | undefined;
  /** Its relays' public addresses (`ip:port`), advertised when no edge relay fits the caller. */
  readonly relays: readonly string[];
  /** Its relays' ICE-TCP addresses (`ip:port`), advertised beside `relays`. */
  readonly tcpRelays: readonly string[];
  /** The cluster's routing table in force. */
  readonly routingTable: () => RoutingTable;
  readonly statuses: StatusBook;
  /** Its transceivers' API client (each cluster may have its own token); default: the placer's `client`. */
  readonly client?: TransceiverApi;
}

/** What placement works with, the same for every offer. */
export interface Placer {
  readonly clusters: readonly PlacementCluster[];
  readonly edges: readonly EdgeRelaySite[];
  /** Caller region → cluster regions, nearest first. */
  readonly nearest: Readonly<Record<string, readonly string[]>>;
  /** Transceivers tried per cluster at most. */
  readonly maxAttempts: number;
  readonly client: TransceiverApi;
  readonly metrics: SignalingMetrics;
  readonly logger: Logger;
  /** Tie-break among equally loaded transceivers. */
  readonly random?: () => number;
}

export interface PlacementRequest {
  readonly requestId: string;
  readonly offer: string;
  readonly caller: CallerRegion;
  /** Passed to the transceiver with the offer (request ID, user agent, region). */
  readonly metadata: Record<string, unknown>;
}

export type Placement =
  | ({ readonly kind: 'placed'; readonly clusterId: number; readonly transceiverId: number } & CreatedSession)
  /** A transceiver refused the offer itself (it checks with the default shape limits). */
  | {
      readonly kind: 'offer-refused';
      readonly code: 'bad-sdp' | 'offer-too-complex';
      readonly detail: string;
    }
  /** A transceiver failed in a way that trying another would not mend. */
  | { readonly kind: 'transceiver-error'; readonly detail: string }
  /** Every cluster full, draining or unreachable. */
  | { readonly kind: 'no-capacity'; readonly detail: string };

export const isOfferProblem = (code: string | undefined): code is 'bad-sdp' | 'offer-too-complex' =>
  code === 'bad-sdp' || code === 'offer-too-complex';

export async function placeSession(placer: Placer, request: PlacementRequest): Promise<Placement> {
  const { clusters, metrics, logger } = placer;
  const { requestId, offer, metadata } = request;
  const { region, source } = request.caller;
  const failures: string[] = [];
  const skippedByCluster: string[] = [];
  let tried = 0;

  const ordered = clusterOrder(clusters, region, placer.nearest);
  for (const [rank, cluster] of ordered.entries()) {
    const ranking = rankTransceivers(
      cluster.routingTable().transceivers,
      (id) => cluster.statuses.view(id),
      placer.random,
    );
    if (ranking.candidates.length === 0) {
      skippedByCluster.push(
        clusters.length > 1
          ? `cluster ${cluster.clusterId}: ${describeSkipped(ranking.skipped)}`
          : describeSkipped(ranking.skipped),
      );
      continue;
    }
    const advertised = advertisedRelays(region, cluster.clusterId, cluster, placer.edges);
    const { relays, tcpRelays } = advertised;
    // No relays named: the transceiver advertises its own (UDP and TCP) from its configuration.
    const body =
      relays.length === 0
        ? { offer, metadata }
        : tcpRelays.length === 0
          ? { offer, relays, metadata }
          : { offer, relays, tcpRelays, metadata };
    for (const candidate of ranking.candidates.slice(0, placer.maxAttempts)) {
      tried++;
      const result: TransceiverReply<CreatedSession> = await (cluster.client ?? placer.client).createSession(
        candidate.api,
        body,
      );
      if (result.kind === 'ok') {
        cluster.statuses.notePlaced(candidate.id);
        metrics.sessionsPlaced.inc({ transceiver: String(candidate.id) });
        metrics.placements.inc({
          cluster: String(cluster.clusterId),
          relay: advertised.via,
          choice: rank === 0 ? 'first' : 'overflow',
        });
        logger.info(
          {
            requestId,
            cluster: cluster.clusterId,
            transceiver: candidate.id,
            sessionId: result.value.sessionId,
            attempts: failures.length + 1,
            region,
            regionSource: source,
            relay: advertised.via,
          },
          'session placed',
        );
        return { kind: 'placed', clusterId: cluster.clusterId, transceiverId: candidate.id, ...result.value };
      }
      const problemText = transceiverProblem(result);
      const outcome = result.kind === 'problem' ? String(result.status) : result.kind;
      metrics.transceiverErrors.inc({ operation: 'create', outcome });
      if (result.kind === 'unreachable') {
        cluster.statuses.markUnreachable(candidate.id, result.error);
      } else if (result.kind === 'problem' && result.status === 503) {
        if (result.code === 'draining') cluster.statuses.markDraining(candidate.id);
        else cluster.statuses.markFull(candidate.id);
      } else if (result.kind === 'problem' && result.status === 400 && isOfferProblem(result.code)) {
        return {
          kind: 'offer-refused',
          code: result.code,
          detail: result.detail ?? 'the media server refused the offer',
        };
      } else {
        logger.warn(
          { requestId, cluster: cluster.clusterId, transceiver: candidate.id, problem: problemText },
          'transceiver failed to create a session',
        );
        const code = result.kind === 'problem' && result.code ? ` (${result.code})` : '';
        return { kind: 'transceiver-error', detail: `the media server could not create the session${code}` };
      }
      logger.info(
        { requestId, cluster: cluster.clusterId, transceiver: candidate.id, problem: problemText },
        'transceiver refused the session; trying the next',
      );
      failures.push(`transceiver ${candidate.id}: ${problemText}`);
    }
  }

  metrics.noCapacity.inc();
  const skipped = skippedByCluster.join('; ');
  const detail =
    tried === 0
      ? `no active transceiver has room (${skipped})`
      : `no transceiver could take the session (${tried} tried)`;
  logger.warn({ requestId, failures, skipped, region }, 'no capacity');
  return { kind: 'no-capacity', detail };
}
