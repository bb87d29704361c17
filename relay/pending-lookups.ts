// Packets from unknown addresses wait here while the flow cache is asked who owns them (docs/relay.md).
// Everything is bounded so garbage cannot turn into Redis load or memory: lookups in flight, lookups
// per source IP per second, packets and bytes held per address, and a negative cache of misses.
import type { AddressFamily } from '../protocol/address.ts';
import type { DropReason } from './counters.ts';
import type { EdgeHop } from './flow-table.ts';
import { SourceRateLimiter } from './source-rate-limiter.ts';

export interface PendingLookup {
  readonly address: string;
  readonly family: AddressFamily;
  readonly port: number;
  readonly socketIndex: number;
  /** The edge relay the packets came through, if they did (global relay tier). */
  readonly via: EdgeHop | undefined;
  readonly packets: Buffer[];
}

export interface PendingLookupsOptions {
  readonly maxConcurrent: number;
  readonly lookupsPerSourcePerSecond: number;
  readonly negativeCacheMs: number;
  readonly maxHeldPackets?: number;
  readonly maxNegativeEntries?: number;
}

export class PendingLookups {
  readonly #pending = new Map<string, PendingLookup>();
  readonly #misses = new Map<string, number>();
  readonly #limiter: SourceRateLimiter;
  readonly #maxConcurrent: number;
  readonly #negativeCacheMs: number;
  readonly #maxHeldPackets: number;
  readonly #maxNegativeEntries: number;

  constructor(options: PendingLookupsOptions) {
    this.#maxConcurrent = options.maxConcurrent;
    this.#limiter = new SourceRateLimiter(options.lookupsPerSourcePerSecond);
    this.#negativeCacheMs = options.negativeCacheMs;
    this.#maxHeldPackets = options.maxHeldPackets ?? 16;
    this.#maxNegativeEntries = options.maxNegativeEntries ?? 65_536;
  }

  /**
   * 'start': the caller must look `key` up now and call settle() with the answer.
   * 'held': a lookup for `key` is already under way; the packet waits for it.
   * A DropReason: the packet is refused.
   */
  hold(
    key: string,
    address: string,
    family: AddressFamily,
    port: number,
    socketIndex: number,
    packet: Buffer,
    now: number,
    via?: EdgeHop,
  ): 'start' | 'held' | DropReason {
    const pending = this.#pending.get(key);
    if (pending !== undefined) {
      if (pending.packets.length >= this.#maxHeldPackets) return 'hold_overflow';
      pending.packets.push(packet);
      return 'held';
    }
    const missUntil = this.#misses.get(key);
    if (missUntil !== undefined) {
      if (missUntil > now) return 'redis_miss';
      this.#misses.delete(key);
    }
    if (this.#pending.size >= this.#maxConcurrent) return 'redis_busy';
    if (!this.#limiter.allow(address, now)) return 'rate_limited';
    this.#pending.set(key, { address, family, port, socketIndex, via, packets: [packet] });
    return 'start';
  }

  /** Ends the lookup for `key`; returns what was held. A miss is remembered for negativeCacheMs. */
  settle(key: string, outcome: 'found' | 'miss' | 'error', now: number): PendingLookup | undefined {
    const pending = this.#pending.get(key);
    this.#pending.delete(key);
    if (outcome === 'miss' && this.#negativeCacheMs > 0) {
      if (this.#misses.size >= this.#maxNegativeEntries) this.sweep(now);
      if (this.#misses.size < this.#maxNegativeEntries) this.#misses.set(key, now + this.#negativeCacheMs);
    }
    return pending;
  }

  sweep(now: number): void {
    for (const [key, until] of this.#misses) if (until <= now) this.#misses.delete(key);
    this.#limiter.sweep(now);
  }

  get inFlight(): number {
    return this.#pending.size;
  }
}
