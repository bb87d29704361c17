// Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm): the holder renews the
// Lease every retry period; a candidate takes it over only after it has seen the same record,
// unrenewed, for a whole lease duration by its own clock (clocks of different machines are never
// compared). Every write carries the resourceVersion it read, so two candidates can never both
// win. A leader that cannot renew within the renew deadline stops leading at once, before its
// lease can expire and another take over; on shutdown it releases the Lease so a standby takes
// over without waiting.
import type { Logger } from 'pino';
import { sleep } from '../runtime/sleep.ts';
import { isConflict, isNotFound, type KubeClient } from './client.ts';
import { BUILT_IN_RESOURCES, resourcePath } from './resources.ts';

export interface LeaseSpec {
  holderIdentity?: string | undefined;
  leaseDurationSeconds?: number | undefined;
  acquireTime?: string | undefined;
  renewTime?: string | undefined;
  leaseTransitions?: number | undefined;
}

export interface LeaseObservation {
  /** The record last read, as text (any change restarts the expiry clock). */
  readonly record: string;
  /** Local Unix ms when that record was first seen. */
  readonly at: number;
}

export type LeaseDecision =
  | { readonly kind: 'write'; readonly spec: LeaseSpec; readonly transition: boolean }
  | { readonly kind: 'held'; readonly holder: string; readonly expiresAt: number };

/** MicroTime as the API server writes it: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * What a candidate does with the Lease it just read (undefined: none exists): write itself in (a
 * create, renew or takeover) or leave it to the current holder until `expiresAt`.
 */
export function decideLease(
  current: LeaseSpec | undefined,
  observation: LeaseObservation | undefined,
  identity: string,
  leaseDurationSeconds: number,
  now: number,
): LeaseDecision {
  const mine: LeaseSpec = {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: microTime(now),
    renewTime: microTime(now),
    leaseTransitions: current?.leaseTransitions ?? 0,
  };
  if (current === undefined) return { kind: 'write', spec: mine, transition: false };
  const holder = current.holderIdentity ?? '';
  if (holder === identity) {
    return {
      kind: 'write',
      spec: { ...current, leaseDurationSeconds, renewTime: microTime(now) },
      transition: false,
    };
  }
  if (holder !== '') {
    const seenSince = observation?.record === JSON.stringify(current) ? observation.at : now;
    const expiresAt = seenSince + (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (now < expiresAt) return { kind: 'held', holder, expiresAt };
  }
  return {
    kind: 'write',
    spec: { ...mine, leaseTransitions: (current.leaseTransitions ?? 0) + 1 },
    transition: true,
  };
}

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  /** A leader that has not renewed for this long stops leading (shorter than the lease). */
  readonly renewDeadlineMs: number;
  /** How often a leader renews and a candidate tries. */
  readonly retryPeriodMs: number;
  readonly logger: Logger;
  /** Called on winning; `lost` aborts the moment leadership ends (lost, or released at shutdown). */
  readonly onStartedLeading: (lost: AbortSignal) => void;
  readonly onStoppedLeading: () => void;
}

interface LeaseObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export class LeaderElector {
  readonly #client: KubeClient;
  readonly #options: LeaderElectionOptions;
  readonly #stop = new AbortController();
  #observation: LeaseObservation | undefined;
  #leading: AbortController | undefined;
  #lastRenew = 0;
  #loop: Promise<void> | undefined;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.#client = client;
    this.#options = options;
  }

  get isLeader(): boolean {
    return this.#leading !== undefined;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops trying; a leader stops leading and releases the Lease. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    if (this.#leading) {
      this.#stopLeading('shutting down');
      await this.#release();
    }
  }

  async #run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, logger } = this.#options;
    while (!this.#stop.signal.aborted) {
      let acquired = false;
      try {
        acquired = await this.#tryAcquireOrRenew();
      } catch (error) {
        logger.warn({ err: (error as Error).message, lease: this.#options.name }, 'lease update failed');
      }
      if (this.#stop.signal.aborted) break;
      const now = Date.now();
      if (acquired) {
        this.#lastRenew = now;
        if (!this.#leading) {
          this.#leading = new AbortController();
          logger.info({ identity: this.#options.identity, lease: this.#options.name }, 'became leader');
          try {
            this.#options.onStartedLeading(this.#leading.signal);
          } catch (error) {
            logger.error({ err: error }, 'onStartedLeading failed');
          }
        }
      } else if (this.#leading && now - this.#lastRenew >= renewDeadlineMs) {
        this.#stopLeading(`could not renew the lease for ${now - this.#lastRenew} ms`);
      }
      await sleep(this.#leading ? retryPeriodMs : jitter(retryPeriodMs), this.#stop.signal);
    }
  }

  #stopLeading(why: string): void {
    const leading = this.#leading;
    if (!leading) return;
    this.#leading = undefined;
    this.#options.logger.warn({ identity: this.#options.identity, why }, 'stopped leading');
    leading.abort(new Error(`leadership lost: ${why}`));
    try {
      this.#options.onStoppedLeading();
    } catch (error) {
      this.#options.logger.error({ err: error }, 'onStoppedLeading failed');
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds, renewDeadlineMs, retryPeriodMs } = this.#options;
    const path = resourcePath(BUILT_IN_RESOURCES.lease, namespace, name);
    // A renewal that takes longer than the deadline is worthless: give up on it in time.
    const timeoutMs = Math.max(500, Math.min(renewDeadlineMs - retryPeriodMs, 10_000));
    const signal = this.#stop.signal;
    let current: LeaseObject | undefined;
    try {
      current = await this.#client.get<LeaseObject>(path, { signal, timeoutMs });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const now = Date.now();
    const spec = current?.spec;
    const record = JSON.stringify(spec ?? {});
    if (current && this.#observation?.record !== record) this.#observation = { record, at: now };
    const decision = decideLease(
      current ? (spec ?? {}) : undefined,
      this.#observation,
      identity,
      leaseDurationSeconds,
      now,
    );
    if (decision.kind === 'held') {
      if (this.#leading) this.#stopLeading(`${decision.holder} holds the lease`);
      return false;
    }
    try {
      let written: LeaseObject;
      if (current === undefined) {
        written = await this.#client.request<LeaseObject>(
          'POST',
          resourcePath(BUILT_IN_RESOURCES.lease, namespace),
          {
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name, namespace },
              spec: decision.spec,
            },
            signal,
            timeoutMs,
          },
        );
      } else {
        written = await this.#client.request<LeaseObject>('PUT', path, {
          body: { ...current, spec: decision.spec },
          signal,
          timeoutMs,
        });
      }
      this.#observation = { record: JSON.stringify(written.spec ?? {}), at: now };
      return true;
    } catch (error) {
      if (isConflict(error) || (error as { status?: number }).status === 409) return false;
      throw error;
    }
  }

  /**
   * Gives the Lease up (holder emptied) so a standby takes over at its next try. The Lease is read
   * afresh: the last object this elector wrote can be stale, since stopping aborts a renewal the API
   * server may already have applied, and a PUT of the stale version would be refused as a conflict,
   * leaving the standby to wait out the whole lease.
   */
  async #release(): Promise<void> {
    const { namespace, name, identity } = this.#options;
    const path = resourcePath(BUILT_IN_RESOURCES.lease, namespace, name);
    try {
      const current = await this.#client.get<LeaseObject>(path, { timeoutMs: 2_000 });
      if (current.spec?.holderIdentity !== identity) return;
      await this.#client.request('PUT', path, {
        body: {
          ...current,
          spec: {
            ...current.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(Date.now()),
          },
        },
        timeoutMs: 2_000,
      });
      this.#options.logger.info({ identity, lease: name }, 'released the lease');
    } catch (error) {
      // Someone else holds it already, or the API server is away: the lease expires by itself.
      this.#options.logger.warn({ err: (error as Error).message }, 'could not release the lease');
    }
  }
}

function jitter(ms: number): number {
  return Math.round(ms * (1 + 0.2 * Math.random()));
}
