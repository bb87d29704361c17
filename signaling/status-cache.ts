// The load figures signaling picks with: every transceiver's `GET /status`, polled in the background
// (about once a second, short timeout) so that placing a call never waits for a status round trip.
// A transceiver that does not answer, answers as someone else, or has not answered for `staleMs` is
// unavailable. Between polls, what signaling itself learns (a session placed, a 503) adjusts the
// figures; the next poll replaces them with the transceiver's own.
import type { RoutingTable } from '../protocol/routing-table.ts';
import type { TransceiverStatus } from '../protocol/transceiver-status.ts';
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

interface Target {
  readonly id: number;
  readonly api: string;
  readonly clusterId: number;
  known: Known | undefined;
  polling: Promise<void> | undefined;
}

export type Availability = 'available' | 'full' | 'draining' | 'unavailable';

export class StatusCache {
  readonly #options: StatusCacheOptions;
  readonly #now: () => number;
  #targets = new Map<number, Target>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: StatusCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Follows a routing table: transceivers with an `api` are polled, others are forgotten. A new
   * transceiver (or a changed API URL) is polled at once; the promise resolves when those polls end.
   */
  setTable(table: Pick<RoutingTable, 'clusterId' | 'transceivers'>): Promise<void> {
    const next = new Map<number, Target>();
    const fresh: Target[] = [];
    for (const entry of table.transceivers) {
      if (entry.api === undefined) continue;
      const previous = this.#targets.get(entry.id);
      if (previous && previous.api === entry.api && previous.clusterId === table.clusterId) {
        next.set(entry.id, previous);
      } else {
        const target: Target = {
          id: entry.id,
          api: entry.api,
          clusterId: table.clusterId,
          known: undefined,
          polling: undefined,
        };
        next.set(entry.id, target);
        fresh.push(target);
      }
    }
    this.#targets = next;
    return this.#closed
      ? Promise.resolve()
      : Promise.all(fresh.map((target) => this.#poll(target))).then(() => {});
  }

  /** Polls everything once now (resolves when every poll ended), then every intervalMs. */
  start(): Promise<void> {
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => void this.pollAll(), this.#options.intervalMs);
      this.#timer.unref();
    }
    return this.pollAll();
  }

  /** One round: every target not already being polled. */
  pollAll(): Promise<void> {
    return Promise.all([...this.#targets.values()].map((target) => this.#poll(target))).then(() => {});
  }

  #poll(target: Target): Promise<void> {
    if (this.#closed) return Promise.resolve();
    target.polling ??= (async () => {
      try {
        const reply = await this.#options.client.status(target.api);
        if (this.#closed || this.#targets.get(target.id) !== target) return;
        let problem: string | undefined;
        if (reply.kind === 'ok') {
          if (reply.value.transceiverId !== target.id) {
            problem = `${target.api} answers as transceiver ${reply.value.transceiverId}, not ${target.id}`;
          } else if (reply.value.clusterId !== target.clusterId) {
            problem = `${target.api} answers for cluster ${reply.value.clusterId}, not ${target.clusterId}`;
          }
        } else if (reply.kind === 'unreachable') {
          problem = reply.error;
        } else if (reply.kind === 'problem') {
          problem = `status ${reply.status}${reply.code ? ` ${reply.code}` : ''}${reply.detail ? `: ${reply.detail}` : ''}`;
        } else {
          problem = reply.error;
        }
        const wasDown = target.known?.kind === 'down';
        if (problem === undefined && reply.kind === 'ok') {
          if (target.known?.kind === 'down') this.#options.onRecovered?.(target.id);
          target.known = { kind: 'status', status: reply.value, at: this.#now() };
        } else {
          target.known = { kind: 'down', reason: problem ?? 'unknown' };
          this.#options.onPollError?.(target.id, problem ?? 'unknown', !wasDown);
        }
      } finally {
        target.polling = undefined;
      }
    })();
    return target.polling;
  }

  /** What pick needs; undefined for a transceiver that is not polled (no api, not in the table). */
  view(id: number): StatusView | undefined {
    const target = this.#targets.get(id);
    if (target === undefined) return undefined;
    const known = target.known;
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
    const target = this.#targets.get(id);
    if (target) target.known = { kind: 'down', reason };
  }

  #adjust(id: number, change: (status: TransceiverStatus) => TransceiverStatus): void {
    const target = this.#targets.get(id);
    if (target?.known?.kind === 'status') {
      target.known = { kind: 'status', status: change(target.known.status), at: target.known.at };
    }
  }

  /** How many polled transceivers are in each condition (for a gauge). */
  availability(): Record<Availability, number> {
    const counts: Record<Availability, number> = { available: 0, full: 0, draining: 0, unavailable: 0 };
    for (const id of this.#targets.keys()) {
      const view = this.view(id);
      if (view === undefined || !view.reachable) counts.unavailable++;
      else if (view.state === 'draining') counts.draining++;
      else if (view.sessions >= view.capacity) counts.full++;
      else counts.available++;
    }
    return counts;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
