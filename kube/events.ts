// Kubernetes Events (events.k8s.io/v1) about the objects the operator reconciles, bounded so a
// reconcile loop cannot flood the API server: a repeat of the same event (same object, type,
// reason and note) within the series window updates the first one's series count at most every
// `seriesUpdateMs` instead of creating another, and a token bucket drops what exceeds the rate.
// Events are best effort: a failure is logged and counted, never retried, never blocks a reconcile.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient } from './client.ts';
import { PATCH } from './client.ts';
import { microTime } from './leader-election.ts';
import { BUILT_IN_RESOURCES, resourcePath } from './resources.ts';

export interface EventSubject {
  readonly apiVersion?: string | undefined;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string | undefined; uid?: string | undefined };
}

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  /** reportingController, e.g. `voice-edge.io/operator`. */
  readonly controller: string;
  /** reportingInstance: this replica. */
  readonly instance: string;
  readonly logger: Logger;
  readonly seriesWindowMs?: number;
  readonly seriesUpdateMs?: number;
  readonly ratePerSecond?: number;
  readonly burst?: number;
  readonly maxTracked?: number;
  readonly onDropped?: (why: 'rate' | 'failed') => void;
  readonly onRecorded?: (type: EventType, reason: string) => void;
}

interface Tracked {
  name: string;
  namespace: string;
  firstAt: number;
  count: number;
  lastWriteAt: number;
  lastSeenAt: number;
}

const MAX_NOTE = 1024;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #options: Required<Omit<EventRecorderOptions, 'onDropped' | 'onRecorded'>> &
    Pick<EventRecorderOptions, 'onDropped' | 'onRecorded'>;
  readonly #tracked = new Map<string, Tracked>();
  #tokens: number;
  #refilledAt = Date.now();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.#client = client;
    this.#options = {
      seriesWindowMs: 10 * 60_000,
      seriesUpdateMs: 30_000,
      ratePerSecond: 5,
      burst: 25,
      maxTracked: 2_000,
      ...options,
    };
    this.#tokens = this.#options.burst;
  }

  record(subject: EventSubject, type: EventType, reason: string, action: string, note: string): void {
    const namespace = subject.metadata.namespace ?? 'default';
    const now = Date.now();
    const text = note.length > MAX_NOTE ? `${note.slice(0, MAX_NOTE - 1)}…` : note;
    const key = `${subject.metadata.uid ?? `${namespace}/${subject.metadata.name}`}|${type}|${reason}|${text}`;
    const tracked = this.#tracked.get(key);
    if (tracked && now - tracked.firstAt < this.#options.seriesWindowMs) {
      tracked.count++;
      tracked.lastSeenAt = now;
      if (now - tracked.lastWriteAt < this.#options.seriesUpdateMs || !this.#take(now)) return;
      tracked.lastWriteAt = now;
      this.#track(
        this.#client
          .request('PATCH', resourcePath(BUILT_IN_RESOURCES.event, tracked.namespace, tracked.name), {
            body: { series: { count: tracked.count, lastObservedTime: microTime(now) } },
            contentType: PATCH.merge,
            timeoutMs: 10_000,
          })
          .then(() => undefined),
        reason,
      );
      return;
    }
    if (!this.#take(now)) {
      this.#options.onDropped?.('rate');
      return;
    }
    const name = `${subject.metadata.name.slice(0, 200)}.${now.toString(16)}${randomBytes(4).toString('hex')}`;
    this.#tracked.delete(key);
    this.#tracked.set(key, { name, namespace, firstAt: now, count: 1, lastWriteAt: now, lastSeenAt: now });
    while (this.#tracked.size > this.#options.maxTracked)
      this.#tracked.delete(this.#tracked.keys().next().value!);
    this.#options.onRecorded?.(type, reason);
    this.#track(
      this.#client
        .request('POST', resourcePath(BUILT_IN_RESOURCES.event, namespace), {
          body: {
            apiVersion: 'events.k8s.io/v1',
            kind: 'Event',
            metadata: { name, namespace },
            eventTime: microTime(now),
            reportingController: this.#options.controller,
            reportingInstance: this.#options.instance.slice(0, 128),
            action: action.slice(0, 128),
            reason: reason.slice(0, 128),
            type,
            note: text,
            regarding: {
              apiVersion: subject.apiVersion,
              kind: subject.kind,
              name: subject.metadata.name,
              namespace,
              uid: subject.metadata.uid,
            },
          },
          timeoutMs: 10_000,
        })
        .then(() => undefined),
      reason,
    );
  }

  /** Waits for events being written (for shutdown and tests). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  #track(write: Promise<void>, reason: string): void {
    const tracked = write.catch((error: Error) => {
      this.#options.onDropped?.('failed');
      this.#options.logger.warn({ reason, err: error.message }, 'could not record an event');
    });
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  #take(now: number): boolean {
    this.#tokens = Math.min(
      this.#options.burst,
      this.#tokens + ((now - this.#refilledAt) / 1000) * this.#options.ratePerSecond,
    );
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
