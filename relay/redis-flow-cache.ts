// The optional flow cache: client address → server ufrag, in Redis with a short TTL, so a relay that
// restarts (or another replica that inherits a flow) resumes forwarding without waiting for the
// client's next STUN check. Every call fails fast when Redis is away: the relay then works from
// memory, and the caller counts the error.
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

  #key(address: string, port: number): string {
    return `${this.#options.keyPrefix}flow:${this.#options.scope}:${addressKey(address, port)}`;
  }

  /** The ufrag recorded for this client address, or null. Rejects on any Redis problem. */
  async lookup(address: string, port: number): Promise<string | null> {
    return this.#redis.get(this.#key(address, port));
  }

  /** Writes (or refreshes) records in one pipeline. Resolves to the number that failed. */
  async record(flows: readonly CachedFlow[]): Promise<number> {
    if (flows.length === 0) return 0;
    const pipeline = this.#redis.pipeline();
    for (const flow of flows)
      pipeline.set(this.#key(flow.address, flow.port), flow.ufrag, 'EX', this.#options.ttlSeconds);
    const results = await pipeline.exec();
    if (results === null) return flows.length;
    return results.filter(([error]) => error !== null).length;
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
