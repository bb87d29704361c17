// Live load of the transceivers: GET http://<podIP>:8090/status of every transceiver pod each
// interval (bounded concurrency, a timeout per request), and POST /drain to those chosen to drain
// until one answers that it drains or the pod is gone. An answer counts only if it names the pod's
// own transceiver ID (pod IPs are reused); an answer older than `staleMs` counts as none.
import type { Logger } from 'pino';
import { TransceiverStatusSchema } from '../protocol/transceiver-status.ts';
import { sleep } from '../runtime/sleep.ts';
import { apiBaseUrl } from './observed-transceiver-pod.ts';
import type { StatusSample } from './status-sample.ts';

export interface PollTarget {
  /** `namespace/name` of the pod. */
  readonly key: string;
  readonly podIP: string;
  readonly id: number;
  /** Bearer token of the transceiver's internal API (its cluster's credential), sent with every call. */
  readonly token?: string | undefined;
}

export interface StatusPollerOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Requests at once. */
  readonly concurrency?: number;
  /** The pods to poll now (read from the pod cache at every round). */
  readonly targets: () => readonly PollTarget[];
  /** A pod's sample changed (sessions or state), appeared or went stale. */
  readonly onChange: (key: string) => void;
  readonly logger: Logger;
  readonly onPoll?: (outcome: 'ok' | 'error' | 'mismatch') => void;
  /** Where a transceiver's API is (default http://<podIP>:8090). */
  readonly baseUrl?: (target: PollTarget) => string;
  readonly onDrainRequest?: (outcome: 'ok' | 'error') => void;
}

interface Entry {
  target: PollTarget;
  sample: StatusSample | undefined;
  drainWanted: boolean;
}

export class StatusPoller {
  readonly #options: StatusPollerOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #stop = new AbortController();
  readonly #staleMs: number;
  readonly #baseUrl: (target: PollTarget) => string;
  #loop: Promise<void> | undefined;

  constructor(options: StatusPollerOptions) {
    this.#options = options;
    this.#baseUrl = options.baseUrl ?? ((target) => apiBaseUrl(target.podIP));
    this.#staleMs = options.intervalMs * 3 + options.timeoutMs;
  }

  /** The latest fresh sample of a pod, if any. */
  sample(key: string, now = Date.now()): StatusSample | undefined {
    const sample = this.#entries.get(key)?.sample;
    return sample !== undefined && now - sample.at <= this.#staleMs ? sample : undefined;
  }

  /** Asks for POST /drain to this pod at every round until it says it drains (or leaves the targets). */
  requestDrain(target: PollTarget): void {
    let entry = this.#entries.get(target.key);
    if (entry === undefined || entry.target.podIP !== target.podIP || entry.target.id !== target.id) {
      entry = { target, sample: undefined, drainWanted: false };
      this.#entries.set(target.key, entry);
    } else entry.target = target;
    if (entry.drainWanted) return;
    entry.drainWanted = true;
    // Tell it now rather than at the next round.
    if (!this.#stop.signal.aborted) void this.#drain(entry);
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const started = Date.now();
      await this.#round();
      const wait = Math.max(0, this.#options.intervalMs - (Date.now() - started));
      await sleep(wait, signal);
    }
  }

  /** One round over every target; exposed for tests through start(). */
  async #round(): Promise<void> {
    const targets = this.#options.targets();
    const live = new Set<string>();
    for (const target of targets) {
      live.add(target.key);
      const entry = this.#entries.get(target.key);
      if (entry === undefined)
        this.#entries.set(target.key, { target, sample: undefined, drainWanted: false });
      else if (entry.target.podIP !== target.podIP || entry.target.id !== target.id) {
        entry.target = target;
        entry.sample = undefined;
        entry.drainWanted = false;
      } else entry.target = target; // a rotated token
    }
    for (const key of this.#entries.keys()) if (!live.has(key)) this.#entries.delete(key);

    const queue = [...this.#entries.values()];
    const worker = async () => {
      for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) {
        if (this.#stop.signal.aborted) return;
        await this.#poll(entry);
        if (entry.drainWanted && entry.sample?.state !== 'draining') await this.#drain(entry);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#options.concurrency ?? 16, queue.length) }, worker),
    );
  }

  async #poll(entry: Entry): Promise<void> {
    const { target } = entry;
    const before = this.sample(target.key);
    try {
      const response = await fetch(`${this.#baseUrl(target)}/status`, {
        headers: authorization(target),
        signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#stop.signal]),
      });
      const body = response.ok ? await response.json() : undefined;
      const parsed = TransceiverStatusSchema.safeParse(body);
      if (!parsed.success) throw new Error(`unexpected /status answer (HTTP ${response.status})`);
      if (parsed.data.transceiverId !== target.id) {
        this.#options.onPoll?.('mismatch');
        entry.sample = undefined;
      } else {
        this.#options.onPoll?.('ok');
        const { sessions, capacity, state } = parsed.data;
        entry.sample = { sessions, capacity, state, at: Date.now() };
      }
    } catch (error) {
      if (this.#stop.signal.aborted) return;
      this.#options.onPoll?.('error');
      this.#options.logger.debug(
        { pod: target.key, err: (error as Error).message },
        'transceiver status unavailable',
      );
    }
    const after = this.sample(target.key);
    if (before?.sessions !== after?.sessions || before?.state !== after?.state)
      this.#options.onChange(target.key);
  }

  async #drain(entry: Entry): Promise<void> {
    const { target } = entry;
    try {
      const response = await fetch(`${this.#baseUrl(target)}/drain`, {
        method: 'POST',
        headers: authorization(target),
        signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#stop.signal]),
      });
      const body = (response.ok ? await response.json() : undefined) as { state?: string } | undefined;
      if (body?.state !== 'draining') throw new Error(`POST /drain answered HTTP ${response.status}`);
      this.#options.onDrainRequest?.('ok');
      this.#options.logger.info({ pod: target.key, transceiverId: target.id }, 'transceiver drains');
      // A call may have begun since the last /status: ask again now that no new one can.
      await this.#poll(entry);
    } catch (error) {
      if (this.#stop.signal.aborted) return;
      this.#options.onDrainRequest?.('error');
      this.#options.logger.debug(
        { pod: target.key, err: (error as Error).message },
        'POST /drain failed: will retry',
      );
    }
  }
}

function authorization(target: PollTarget): Record<string, string> {
  return target.token === undefined ? {} : { authorization: `Bearer ${target.token}` };
}
