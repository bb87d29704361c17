// The optional flow cache: client address → server ufrag, in Redis with a short TTL, so a relay that
// restarts (or another replica that inherits a flow) resumes forwarding without waiting for the
// client's next STUN check; and the SSRC a flow's client sends → the same ufrag, so a client whose
// address changed is found by its media on any replica (a candidate path: docs/relay.md). Every call
// fails fast when Redis is away: the relay then works from memory, and the caller counts the error.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { addressKey } from '../protocol/address.ts';

export interface RedisFlowCacheOptions {
  readonly url: string;
  readonly keyPrefix: string;
  /** Whose records: the cluster ID, or `edge` for an edge relay. */
  readonly scope: string;
  readonly ttlSeconds: number;
  readonly lookupTimeoutMs: number;
}

export interface CachedFlow {
  readonly address: string;
  readonly port: number;
  readonly ufrag: string;
  /** The SSRC the client sends, once the flow has carried RTP. */
  readonly ssrc: number | undefined;
}

/** A record found: by the packet's source address (the flow itself) or by its SSRC (the session). */
export interface CacheHit {
  readonly ufrag: string;
  readonly by: 'address' | 'ssrc';
}

export class RedisFlowCache {
  readonly #redis: Redis;
  readonly #options: RedisFlowCacheOptions;
  readonly #logger: Logger;
  #connected = false;

  constructor(options: RedisFlowCacheOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
    this.#redis = new Redis(options.url, {
      // Never queue commands while disconnected: a lookup must answer within the hold time or not at all.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.lookupTimeoutMs,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
      lazyConnect: false,
    });
    this.#redis.on('ready', () => {
      if (!this.#connected) this.#logger.info({ url: redactUrl(options.url) }, 'redis connected');
      this.#connected = true;
    });
    this.#redis.on('error', (error: Error) => {
      if (this.#connected)
        this.#logger.warn({ err: error.message }, 'redis unavailable; forwarding from memory');
      this.#connected = false;
    });
    this.#redis.on('end', () => {
      this.#connected = false;
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves when connected (true), or after `timeoutMs` without a connection (false). */
  waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.#connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (connected: boolean) => {
        clearTimeout(timer);
        this.#redis.off('ready', onReady);
        resolve(connected);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#redis.on('ready', onReady);
    });
  }

  #key(address: string, port: number): string {
    return `${this.#options.keyPrefix}flow:${this.#options.scope}:${addressKey(address, port)}`;
  }

  #ssrcKey(ssrc: number): string {
    return `${this.#options.keyPrefix}ssrc:${this.#options.scope}:${ssrc}`;
  }

  /**
   * The ufrag recorded for this client address, else for `ssrc` (the packet's, if it is RTP), in one
   * round trip; null when neither is known. Rejects on any Redis problem.
   */
  async lookup(address: string, port: number, ssrc?: number): Promise<CacheHit | null> {
    if (ssrc === undefined) {
      const ufrag = await this.#redis.get(this.#key(address, port));
      return ufrag === null ? null : { ufrag, by: 'address' };
    }
    const [byAddress, bySsrc] = await this.#redis.mget(this.#key(address, port), this.#ssrcKey(ssrc));
    if (byAddress !== null && byAddress !== undefined) return { ufrag: byAddress, by: 'address' };
    if (bySsrc !== null && bySsrc !== undefined) return { ufrag: bySsrc, by: 'ssrc' };
    return null;
  }

  /** Writes (or refreshes) records in one pipeline. Resolves to the number that failed. */
  async record(flows: readonly CachedFlow[]): Promise<number> {
    if (flows.length === 0) return 0;
    const pipeline = this.#redis.pipeline();
    for (const flow of flows) {
      pipeline.set(this.#key(flow.address, flow.port), flow.ufrag, 'EX', this.#options.ttlSeconds);
      if (flow.ssrc !== undefined)
        pipeline.set(this.#ssrcKey(flow.ssrc), flow.ufrag, 'EX', this.#options.ttlSeconds);
    }
    const results = await pipeline.exec();
    if (results === null) return flows.length;
    // A flow whose address or SSRC record failed counts once: the next refresh writes both again.
    let failed = 0;
    let index = 0;
    for (const flow of flows) {
      const writes = flow.ssrc === undefined ? 1 : 2;
      if (results.slice(index, index + writes).some(([error]) => error !== null)) failed++;
      index += writes;
    }
    return failed;
  }

  async close(): Promise<void> {
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
