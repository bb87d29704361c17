// The load figures signaling picks with: every transceiver's `GET /status`, polled in the background
// (about once a second, short timeout) so that placing a call never waits for a status round trip.
// A transceiver that does not answer, answers as someone else, or has not answered for `staleMs` is
// unavailable. Between polls, what signaling itself learns (a session placed, a 503) adjusts the
// figures; the next poll replaces them with the transceiver's own.
import type { RoutingTable } from '../protocol/routing-table.ts';
import type { TransceiverStatus } from '../protocol/transceiver-status.ts';
import {
  type PolledTarget,
  type StatusAnswer,
  type StatusFetch,
  type StatusTarget,
  TransceiverStatusPoller,
} from '../routing/transceiver-status-poller.ts';
import type { StatusView } from './pick.ts';
import type { TransceiverClient } from './transceiver-client.ts';

export interface StatusCacheOptions {
  readonly client: Pick<TransceiverClient, 'status'>;
  readonly intervalMs: number;
  /** A status older than this counts as unavailable (a poll that keeps timing out, a stopped loop). */
  readonly staleMs: number;
  /** A poll failed; `first` is true unless the previous poll failed too (to log an outage once). */
  readonly onPollError?: (id: number, error: string, first: boolean) => void;
  /** A transceiver answered again after failing. */
  readonly onRecovered?: (id: number) => void;
  readonly now?: () => number;
}

type Known =
  | { readonly kind: 'status'; readonly status: TransceiverStatus; readonly at: number }
  | { readonly kind: 'down'; readonly reason: string };

interface Target extends StatusTarget {
  readonly clusterId: number;
}

export type Availability = 'available' | 'full' | 'draining' | 'unavailable';

export class StatusCache {
  readonly #options: StatusCacheOptions;
  readonly #now: () => number;
  readonly #poller: TransceiverStatusPoller<Target, Known | undefined>;

  constructor(options: StatusCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#poller = new TransceiverStatusPoller<Target, Known | undefined>({
      intervalMs: options.intervalMs,
      fetchStatus: (target) => this.#fetchStatus(target),
      initialState: () => undefined,
      sameTransceiver: (previous, next) => previous.api === next.api && previous.clusterId === next.clusterId,
      onAnswer: (polled, answer) => this.#onAnswer(polled, answer),
    });
  }

  /**
   * Follows a routing table: transceivers with an `api` are polled, others are forgotten. A new
   * transceiver (or a changed API URL) is polled at once; the promise resolves when those polls end.
   */
  setTable(table: Pick<RoutingTable, 'clusterId' | 'transceivers'>): Promise<void> {
    const targets: Target[] = [];
    for (const entry of table.transceivers) {
      if (entry.api === undefined) continue;
      targets.push({ key: String(entry.id), id: entry.id, api: entry.api, clusterId: table.clusterId });
    }
    const fresh = this.#poller.setTargets(targets);
    return Promise.all(fresh.map((polled) => this.#poller.poll(polled))).then(() => {});
  }

  /** Polls everything once now (resolves when every poll ended), then every intervalMs. */
  start(): Promise<void> {
    return this.#poller.start();
  }

  /** One round: every target (joining a poll already under way). */
  pollAll(): Promise<void> {
    return this.#poller.pollAll();
  }

  async #fetchStatus(target: Target): Promise<StatusFetch> {
    const reply = await this.#options.client.status(target.api);
    switch (reply.kind) {
      case 'ok':
        return { ok: true, status: reply.value };
      case 'problem':
        return {
          ok: false,
          problem: `status ${reply.status}${reply.code ? ` ${reply.code}` : ''}${reply.detail ? `: ${reply.detail}` : ''}`,
        };
      default:
        return { ok: false, problem: reply.error };
    }
  }

  #onAnswer(polled: PolledTarget<Target, Known | undefined>, answer: StatusAnswer): void {
    const { id } = polled.target;
    const wasDown = polled.state?.kind === 'down';
    if (answer.kind === 'ok') {
      if (wasDown) this.#options.onRecovered?.(id);
      polled.state = { kind: 'status', status: answer.status, at: this.#now() };
    } else {
      polled.state = { kind: 'down', reason: answer.problem };
      this.#options.onPollError?.(id, answer.problem, !wasDown);
    }
  }

  /** What pick needs; undefined for a transceiver that is not polled (no api, not in the table). */
  view(id: number): StatusView | undefined {
    const polled = this.#poller.get(String(id));
    if (polled === undefined) return undefined;
    const known = polled.state;
    if (known === undefined) return { reachable: false, reason: 'no status yet' };
    if (known.kind === 'down') return { reachable: false, reason: known.reason };
    const age = this.#now() - known.at;
    if (age > this.#options.staleMs) return { reachable: false, reason: `last status is ${age} ms old` };
    const { state, sessions, capacity } = known.status;
    return { reachable: true, state, sessions, capacity };
  }

  /** A session was placed: count it until the next poll says otherwise. */
  notePlaced(id: number): void {
    this.#adjust(id, (status) => ({ ...status, sessions: status.sessions + 1 }));
  }

  /** The transceiver answered 503 at-capacity. */
  markFull(id: number): void {
    this.#adjust(id, (status) => ({ ...status, sessions: Math.max(status.sessions, status.capacity) }));
  }

  /** The transceiver answered 503 draining. */
  markDraining(id: number): void {
    this.#adjust(id, (status) => ({ ...status, state: 'draining' }));
  }

  /** A request to it failed at the network level. */
  markUnreachable(id: number, reason: string): void {
    const polled = this.#poller.get(String(id));
    if (polled) polled.state = { kind: 'down', reason };
  }

  #adjust(id: number, change: (status: TransceiverStatus) => TransceiverStatus): void {
    const polled = this.#poller.get(String(id));
    if (polled?.state?.kind === 'status') {
      polled.state = { kind: 'status', status: change(polled.state.status), at: polled.state.at };
    }
  }

  /** How many polled transceivers are in each condition (for a gauge). */
  availability(): Record<Availability, number> {
    const counts: Record<Availability, number> = { available: 0, full: 0, draining: 0, unavailable: 0 };
    for (const key of this.#poller.keys()) {
      const view = this.view(Number(key));
      if (view === undefined || !view.reachable) counts.unavailable++;
      else if (view.state === 'draining') counts.draining++;
      else if (view.sessions >= view.capacity) counts.full++;
      else counts.available++;
    }
    return counts;
  }

  close(): void {
    void this.#poller.stop();
  }
}
