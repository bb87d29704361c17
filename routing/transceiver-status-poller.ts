// Transceivers' GET /status, polled in the background: the one loop signaling (the load it places
// calls by) and the operator (autoscaling, draining) both run. Each target is polled at most once at
// a time; a round polls every target, with bounded concurrency, and rounds start every intervalMs.
// An answer counts only for the transceiver it was asked of (pod IPs and API addresses are reused):
// one that names another transceiver, or another cluster, is a mismatch. What an answer means —
// how long it stays good, what a failure does to it — is the owner's: it keeps its own state per
// target and is handed every answer.
import { setTimeout as delay } from 'node:timers/promises';
import type { TransceiverStatus } from '../protocol/transceiver-status.ts';

export interface StatusTarget {
  /** One per target: `namespace/pod` in the operator, the transceiver ID in signaling. */
  readonly key: string;
  readonly id: number;
  /** The transceiver's API base URL. */
  readonly api: string;
  /** When set, an answer for another cluster is a mismatch. */
  readonly clusterId?: number | undefined;
}

/** What one request for /status brought: the answer, or what went wrong. */
export type StatusFetch =
  | { readonly ok: true; readonly status: TransceiverStatus }
  | { readonly ok: false; readonly problem: string };

/** One poll's outcome, as the owner is told it. */
export type StatusAnswer =
  | { readonly kind: 'ok'; readonly status: TransceiverStatus }
  /** It answered as another transceiver or for another cluster. */
  | { readonly kind: 'mismatch'; readonly problem: string }
  /** No valid answer: unreachable, too slow, an HTTP error or a body outside the contract. */
  | { readonly kind: 'error'; readonly problem: string };

/** A target and the owner's state about it. */
export interface PolledTarget<T extends StatusTarget, S> {
  target: T;
  state: S;
}

export interface TransceiverStatusPollerOptions<T extends StatusTarget, S> {
  /** Rounds start this often. */
  readonly intervalMs: number;
  /** Polls at once within a round (default: no bound). */
  readonly concurrency?: number;
  readonly fetchStatus: (target: T, signal: AbortSignal) => Promise<StatusFetch>;
  /** The owner's state for a new target (or one that now names another transceiver). */
  readonly initialState: (target: T) => S;
  /** Whether `next` is still the transceiver `previous` was (else its state starts again). */
  readonly sameTransceiver: (previous: T, next: T) => boolean;
  /**
   * Every poll's outcome (`startedAt`: Unix ms when it was asked), unless the poller stopped or
   * the target was replaced meanwhile.
   */
  readonly onAnswer: (polled: PolledTarget<T, S>, answer: StatusAnswer, startedAt: number) => void;
  /** Before every round (the operator reads its targets from the pod cache here). */
  readonly beforeRound?: () => void;
  /** After each poll of a round, in the same slot (the operator's POST /drain). */
  readonly afterPoll?: (polled: PolledTarget<T, S>) => Promise<void>;
}

interface Entry<T extends StatusTarget, S> extends PolledTarget<T, S> {
  polling: Promise<void> | undefined;
}

export class TransceiverStatusPoller<T extends StatusTarget, S> {
  readonly #options: TransceiverStatusPollerOptions<T, S>;
  readonly #stop = new AbortController();
  #entries = new Map<string, Entry<T, S>>();
  #loop: Promise<void> | undefined;

  constructor(options: TransceiverStatusPollerOptions<T, S>) {
    this.#options = options;
  }

  /** Aborted when the poller stops (for the owner's own requests to the same transceivers). */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  get(key: string): PolledTarget<T, S> | undefined {
    return this.#entries.get(key);
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /**
   * Follows a new set of targets: others are forgotten, known ones keep their state (with the new
   * target: a rotated token), new ones (or ones that name another transceiver now) start afresh.
   * Returns the new ones.
   */
  setTargets(targets: Iterable<T>): PolledTarget<T, S>[] {
    const next = new Map<string, Entry<T, S>>();
    const fresh: Entry<T, S>[] = [];
    for (const target of targets) {
      const previous = this.#entries.get(target.key);
      if (previous !== undefined && this.#options.sameTransceiver(previous.target, target)) {
        previous.target = target;
        next.set(target.key, previous);
      } else {
        const entry = { target, state: this.#options.initialState(target), polling: undefined };
        next.set(target.key, entry);
        fresh.push(entry);
      }
    }
    this.#entries = next;
    return fresh;
  }

  /** Adds or updates one target, as setTargets would with it among the others. */
  upsert(target: T): PolledTarget<T, S> {
    const previous = this.#entries.get(target.key);
    if (previous !== undefined && this.#options.sameTransceiver(previous.target, target)) {
      previous.target = target;
      return previous;
    }
    const entry = { target, state: this.#options.initialState(target), polling: undefined };
    this.#entries.set(target.key, entry);
    return entry;
  }

  /** Polls one target now, unless a poll of it is already under way (then waits for that one). */
  poll(polled: PolledTarget<T, S>): Promise<void> {
    const entry = polled as Entry<T, S>;
    if (this.stopped) return Promise.resolve();
    entry.polling ??= this.#ask(entry).finally(() => {
      entry.polling = undefined;
    });
    return entry.polling;
  }

  /** Polls one target with a request that starts after this call (after any under way). */
  async refresh(polled: PolledTarget<T, S>): Promise<void> {
    await (polled as Entry<T, S>).polling;
    await this.poll(polled);
  }

  /** One round: every target (joining a poll already under way), then afterPoll for it. */
  async pollAll(): Promise<void> {
    const queue = [...this.#entries.values()];
    const worker = async () => {
      for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) {
        if (this.stopped) return;
        await this.poll(entry);
        await this.#options.afterPoll?.(entry);
      }
    };
    const slots = Math.min(this.#options.concurrency ?? Number.POSITIVE_INFINITY, queue.length);
    await Promise.all(Array.from({ length: slots }, worker));
  }

  /** Starts the rounds (once); resolves when the first has ended (or, when started already, a round). */
  start(): Promise<void> {
    if (this.#loop !== undefined || this.stopped) return this.pollAll();
    let firstRound!: () => void;
    const first = new Promise<void>((resolve) => {
      firstRound = resolve;
    });
    this.#loop = this.#run(firstRound);
    return first;
  }

  /** Stops the rounds; answers that arrive later are dropped. Resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(firstRound: () => void): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const started = Date.now();
      this.#options.beforeRound?.();
      await this.pollAll();
      firstRound();
      const wait = Math.max(0, this.#options.intervalMs - (Date.now() - started));
      // Unref'd: the polls alone keep no process alive.
      await delay(wait, undefined, { signal, ref: false }).catch(() => {});
    }
    firstRound();
  }

  async #ask(entry: Entry<T, S>): Promise<void> {
    const { target } = entry;
    const startedAt = Date.now();
    let answer: StatusAnswer;
    try {
      const fetched = await this.#options.fetchStatus(target, this.#stop.signal);
      answer = fetched.ok ? judge(target, fetched.status) : { kind: 'error', problem: fetched.problem };
    } catch (error) {
      answer = { kind: 'error', problem: (error as Error).message };
    }
    if (this.stopped || this.#entries.get(target.key) !== entry) return;
    this.#options.onAnswer(entry, answer, startedAt);
  }
}

/** The answer, if it is the asked transceiver's own. */
function judge(target: StatusTarget, status: TransceiverStatus): StatusAnswer {
  if (status.transceiverId !== target.id) {
    return {
      kind: 'mismatch',
      problem: `${target.api} answers as transceiver ${status.transceiverId}, not ${target.id}`,
    };
  }
  if (target.clusterId !== undefined && status.clusterId !== target.clusterId) {
    return {
      kind: 'mismatch',
      problem: `${target.api} answers for cluster ${status.clusterId}, not ${target.clusterId}`,
    };
  }
  return { kind: 'ok', status };
}
