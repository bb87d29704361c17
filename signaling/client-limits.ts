// Per-client limits at signaling, sans I/O: a token bucket of offers and a cap on live sessions per
// client. A client is one source address (an IPv6 client: its /64, which one host usually owns
// whole) and, with authentication on, the token it presents: a token embedded in a web page is
// public, so a token alone must not let one holder use up everyone's quota.
//
// Memory is per replica and bounded: at most `maxClients` entries (least recently seen evicted
// first, counted), idle ones swept. Signaling is stateless and runs several replicas, so every limit
// is per replica: a client spread over N replicas by the load balancer gets up to N times as much.
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export interface ClientLimitsConfig {
  /** Offers a client may POST per minute, refilled continuously. */
  readonly offersPerMinute: number;
  /** Offers a client may POST at once before the rate applies. */
  readonly offerBurst: number;
  /** Live sessions a client may hold at once. */
  readonly maxSessions: number;
  /** Clients remembered per replica; past this, the least recently seen is forgotten. */
  readonly maxClients: number;
}

/** A client's sessions are asked about at most this often while it is at its cap. */
export const RECHECK_INTERVAL_MS = 2_000;
const SWEEP_INTERVAL_MS = 60_000;

interface ClientEntry {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  updatedAt: number;
  /** Session references (the session URL's id) placed for this client and not known to be gone. */
  readonly sessions: Set<string>;
  /** Offers admitted and still being placed: they hold a slot too. */
  pending: number;
  /** When its sessions were last asked about (0: never). */
  checkedAt: number;
}

export type OfferAdmission = { kind: 'ok' } | { kind: 'rate-limited'; retryAfterS: number };

export type SlotReservation =
  | { kind: 'reserved' }
  /** At the cap: `recheck` lists the sessions to ask about, empty when they were asked recently. */
  | { kind: 'full'; recheck: readonly string[] };

/** The key of a client: its address (IPv6: the /64), with a hash of its token when it sent one. */
export function clientKey(ip: string, token?: string): string {
  const address = addressKey(ip);
  if (token === undefined) return address;
  // Never the token itself: keys may be logged or dumped.
  const digest = createHash('sha256').update(token).digest('base64url').slice(0, 22);
  return `${address} t:${digest}`;
}

function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const zoneless = ip.split('%')[0]!;
  const [head, tail] = zoneless.includes('::') ? zoneless.split('::') : [zoneless, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail takes two groups; the /64 never reaches it.
  const missing = 8 - left.length - right.length - (right.at(-1)?.includes('.') ? 1 : 0);
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, missing)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

export class ClientLimits {
  readonly #config: ClientLimitsConfig;
  /** Insertion order is recency order: a touched entry moves to the end. */
  readonly #clients = new Map<string, ClientEntry>();
  /** Session reference → client key: a DELETE frees the slot whoever sends it. */
  readonly #owners = new Map<string, string>();
  #lastSweep = 0;
  #evicted = 0;

  constructor(config: ClientLimitsConfig) {
    this.#config = config;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Clients forgotten to stay under maxClients since start. */
  get evicted(): number {
    return this.#evicted;
  }

  get trackedSessions(): number {
    return this.#owners.size;
  }

  /** Takes one offer from the client's bucket, or says how long until one is there. */
  takeOffer(key: string, now: number): OfferAdmission {
    this.#maybeSweep(now);
    const entry = this.#touch(key, now);
    this.#refill(entry, now);
    if (entry.tokens >= 1) {
      entry.tokens -= 1;
      return { kind: 'ok' };
    }
    const perMs = this.#config.offersPerMinute / 60_000;
    return { kind: 'rate-limited', retryAfterS: Math.max(1, Math.ceil((1 - entry.tokens) / perMs / 1000)) };
  }

  /**
   * Holds a session slot for an offer about to be placed. At the cap, names the sessions to ask
   * about (at most every RECHECK_INTERVAL_MS per client); `forget` the gone ones and try again.
   */
  reserve(key: string, now: number): SlotReservation {
    const entry = this.#touch(key, now);
    if (entry.sessions.size + entry.pending < this.#config.maxSessions) {
      entry.pending++;
      return { kind: 'reserved' };
    }
    if (now - entry.checkedAt < RECHECK_INTERVAL_MS || entry.sessions.size === 0)
      return { kind: 'full', recheck: [] };
    entry.checkedAt = now;
    return { kind: 'full', recheck: [...entry.sessions] };
  }

  /** The reserved offer became a session. */
  commit(key: string, session: string, now: number): void {
    const entry = this.#touch(key, now);
    entry.pending = Math.max(0, entry.pending - 1);
    entry.sessions.add(session);
    this.#owners.set(session, key);
  }

  /** The reserved offer was not placed. */
  release(key: string): void {
    const entry = this.#clients.get(key);
    if (entry !== undefined) entry.pending = Math.max(0, entry.pending - 1);
  }

  /** The session ended (DELETE through signaling) or its transceiver says it is gone. */
  forget(session: string): void {
    const key = this.#owners.get(session);
    if (key === undefined) return;
    this.#owners.delete(session);
    this.#clients.get(key)?.sessions.delete(session);
  }

  #touch(key: string, now: number): ClientEntry {
    let entry = this.#clients.get(key);
    if (entry !== undefined) {
      this.#clients.delete(key);
    } else {
      entry = {
        tokens: this.#config.offerBurst,
        updatedAt: now,
        sessions: new Set(),
        pending: 0,
        checkedAt: 0,
      };
      if (this.#clients.size >= this.#config.maxClients) this.#evictOldest();
    }
    this.#clients.set(key, entry);
    return entry;
  }

  #evictOldest(): void {
    const oldest = this.#clients.entries().next();
    if (oldest.done) return;
    const [key, entry] = oldest.value;
    for (const session of entry.sessions) this.#owners.delete(session);
    this.#clients.delete(key);
    this.#evicted++;
  }

  #refill(entry: ClientEntry, now: number): void {
    const perMs = this.#config.offersPerMinute / 60_000;
    entry.tokens = Math.min(
      this.#config.offerBurst,
      entry.tokens + Math.max(0, now - entry.updatedAt) * perMs,
    );
    entry.updatedAt = now;
  }

  /** Forgets clients with nothing to remember: no sessions, none pending, a full bucket. */
  #maybeSweep(now: number): void {
    if (now - this.#lastSweep < SWEEP_INTERVAL_MS) return;
    this.#lastSweep = now;
    for (const [key, entry] of this.#clients) {
      if (entry.sessions.size > 0 || entry.pending > 0) continue;
      this.#refill(entry, now);
      if (entry.tokens >= this.#config.offerBurst) this.#clients.delete(key);
    }
  }
}
