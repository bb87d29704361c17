// Which transceiver gets a new session: pure, from the routing table (who exists, who is draining,
// where the API is) and the last known status of each (sessions, capacity, state as the transceiver
// itself reports it). Least loaded first, so the caller can fall through to the next on a 503.
import type { TransceiverEntry } from '../protocol/routing-table.ts';

/** What signaling knows about a transceiver's load right now. */
export type StatusView =
  | {
      readonly reachable: true;
      readonly state: 'active' | 'draining';
      readonly sessions: number;
      readonly capacity: number;
    }
  | { readonly reachable: false; readonly reason: string };

export interface Candidate {
  readonly id: number;
  readonly api: string;
  readonly sessions: number;
  readonly capacity: number;
}

export type SkipReason = 'no-api' | 'draining' | 'unreachable' | 'full';

export interface Ranking {
  /** Transceivers with room, least loaded first. */
  readonly candidates: readonly Candidate[];
  /** Why the others were left out, by transceiver ID. */
  readonly skipped: ReadonlyMap<number, SkipReason>;
}

/**
 * Ranks the transceivers that may take a new session: in the table as `active`, with an `api`, a
 * fresh status that says `active`, and `sessions < capacity`. Order: lowest utilisation
 * (sessions / capacity), then most free slots, then `random()` — so stateless signaling replicas
 * that see the same figures do not all pile onto the same transceiver between two status polls.
 */
export function rankTransceivers(
  entries: readonly TransceiverEntry[],
  statusOf: (id: number) => StatusView | undefined,
  random: () => number = Math.random,
): Ranking {
  const skipped = new Map<number, SkipReason>();
  const ranked: Array<{ candidate: Candidate; utilisation: number; free: number; tie: number }> = [];
  for (const entry of entries) {
    if (entry.api === undefined) {
      skipped.set(entry.id, 'no-api');
      continue;
    }
    if (entry.state !== 'active') {
      skipped.set(entry.id, 'draining');
      continue;
    }
    const status = statusOf(entry.id);
    if (status === undefined || !status.reachable) {
      skipped.set(entry.id, 'unreachable');
      continue;
    }
    if (status.state !== 'active') {
      skipped.set(entry.id, 'draining');
      continue;
    }
    if (status.capacity <= 0 || status.sessions >= status.capacity) {
      skipped.set(entry.id, 'full');
      continue;
    }
    ranked.push({
      candidate: { id: entry.id, api: entry.api, sessions: status.sessions, capacity: status.capacity },
      utilisation: status.sessions / status.capacity,
      free: status.capacity - status.sessions,
      tie: random(),
    });
  }
  ranked.sort((a, b) => a.utilisation - b.utilisation || b.free - a.free || a.tie - b.tie);
  return { candidates: ranked.map((item) => item.candidate), skipped };
}

/** "3 transceivers: 1 draining, 2 full" — for the detail of a no-capacity answer and for logs. */
export function describeSkipped(skipped: ReadonlyMap<number, SkipReason>): string {
  if (skipped.size === 0) return 'the routing table lists no transceiver';
  const counts = new Map<SkipReason, number>();
  for (const reason of skipped.values()) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  const parts = [...counts].map(
    ([reason, count]) => `${count} ${reason === 'no-api' ? 'without an api URL' : reason}`,
  );
  return `${skipped.size} transceiver${skipped.size === 1 ? '' : 's'}: ${parts.join(', ')}`;
}
