// Live load of the transceivers: GET http://<podIP>:8090/status of every transceiver pod each
// interval (the shared TransceiverStatusPoller: bounded concurrency here, a timeout per request),
// and POST /drain to those chosen to drain until one answers that it drains or the pod is gone. An
// answer counts only if it names the pod's own transceiver ID (pod IPs are reused); a failed poll
// keeps the last sample, and a sample older than `staleMs` counts as none.
import type { Logger } from 'pino';
import { TransceiverStatusSchema } from '../protocol/transceiver-status.ts';
import {
  type PolledTarget,
  type StatusAnswer,
  type StatusFetch,
  TransceiverStatusPoller,
} from '../routing/transceiver-status-poller.ts';
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

/** A pod target as the shared poller keys it: with its API base URL. */
interface PodTarget extends PollTarget {
  readonly api: string;
}

interface PodState {
  sample: StatusSample | undefined;
  drainWanted: boolean;
}

type Polled = PolledTarget<PodTarget, PodState>;

export class StatusPoller {
  readonly #options: StatusPollerOptions;
  readonly #poller: TransceiverStatusPoller<PodTarget, PodState>;
  readonly #staleMs: number;
  readonly #baseUrl: (target: PollTarget) => string;

  constructor(options: StatusPollerOptions) {
    this.#options = options;
    this.#baseUrl = options.baseUrl ?? ((target) => apiBaseUrl(target.podIP));
    this.#staleMs = options.intervalMs * 3 + options.timeoutMs;
    this.#poller = new TransceiverStatusPoller<PodTarget, PodState>({
      intervalMs: options.intervalMs,
      concurrency: options.concurrency ?? 16,
      fetchStatus: (target, signal) => this.#fetchStatus(target, signal),
      initialState: () => ({ sample: undefined, drainWanted: false }),
      sameTransceiver: (previous, next) => previous.podIP === next.podIP && previous.id === next.id,
      onAnswer: (polled, answer, startedAt) => this.#onAnswer(polled, answer, startedAt),
      beforeRound: () =>
        this.#poller.setTargets(this.#options.targets().map((target) => this.#podTarget(target))),
      afterPoll: async (polled) => {
        if (polled.state.drainWanted && polled.state.sample?.state !== 'draining') await this.#drain(polled);
      },
    });
  }

  /** The latest fresh sample of a pod, if any. */
  sample(key: string, now = Date.now()): StatusSample | undefined {
    const sample = this.#poller.get(key)?.state.sample;
    return sample !== undefined && now - sample.at <= this.#staleMs ? sample : undefined;
  }

  /** Asks for POST /drain to this pod at every round until it says it drains (or leaves the targets). */
  requestDrain(target: PollTarget): void {
    const polled = this.#poller.upsert(this.#podTarget(target));
    if (polled.state.drainWanted) return;
    polled.state.drainWanted = true;
    // Tell it now rather than at the next round.
    if (!this.#poller.stopped) void this.#drain(polled);
  }

  start(): void {
    void this.#poller.start();
  }

  async stop(): Promise<void> {
    await this.#poller.stop();
  }

  #podTarget(target: PollTarget): PodTarget {
    return { ...target, api: this.#baseUrl(target) };
  }

  async #fetchStatus(target: PodTarget, stop: AbortSignal): Promise<StatusFetch> {
    const response = await fetch(`${target.api}/status`, {
      headers: authorization(target),
      signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), stop]),
    });
    const body = response.ok ? await response.json() : undefined;
    const parsed = TransceiverStatusSchema.safeParse(body);
    if (!parsed.success) return { ok: false, problem: `unexpected /status answer (HTTP ${response.status})` };
    return { ok: true, status: parsed.data };
  }

  #onAnswer(polled: Polled, answer: StatusAnswer, startedAt: number): void {
    const { target, state } = polled;
    const before = this.sample(target.key, startedAt);
    if (answer.kind === 'ok') {
      this.#options.onPoll?.('ok');
      const { sessions, capacity, state: transceiverState } = answer.status;
      state.sample = { sessions, capacity, state: transceiverState, at: Date.now() };
    } else if (answer.kind === 'mismatch') {
      this.#options.onPoll?.('mismatch');
      state.sample = undefined;
    } else {
      // The last sample stays until it is stale.
      this.#options.onPoll?.('error');
      this.#options.logger.debug({ pod: target.key, err: answer.problem }, 'transceiver status unavailable');
    }
    const after = this.sample(target.key);
    if (before?.sessions !== after?.sessions || before?.state !== after?.state)
      this.#options.onChange(target.key);
  }

  async #drain(polled: Polled): Promise<void> {
    const { target } = polled;
    try {
      const response = await fetch(`${target.api}/drain`, {
        method: 'POST',
        headers: authorization(target),
        signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#poller.signal]),
      });
      const body = (response.ok ? await response.json() : undefined) as { state?: string } | undefined;
      if (body?.state !== 'draining') throw new Error(`POST /drain answered HTTP ${response.status}`);
      this.#options.onDrainRequest?.('ok');
      this.#options.logger.info({ pod: target.key, transceiverId: target.id }, 'transceiver drains');
      // A call may have begun since the last /status: ask again now that no new one can.
      await this.#poller.refresh(polled);
    } catch (error) {
      if (this.#poller.stopped) return;
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
