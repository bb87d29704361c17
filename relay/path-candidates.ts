// Candidate new paths of live sessions (docs/relay.md, "NAT rebinding"): SRTP from an address with no
// flow whose SSRC a flow's client sent last. The relay cannot authenticate SRTP, so it creates no flow
// for such an address: it forwards the packets to the session's transceiver, which verifies them, and
// the flow is made only when that transceiver sends to the new address (its path challenge, then the
// media). Until then a candidate is a short-lived, bounded record of where the packets went.
// Sans-I/O: times are passed in.
import type { TransportAddress } from '../protocol/address.ts';
import type { EdgeHop } from './flow-table.ts';
import type { Route } from './routes.ts';

export interface PathCandidate {
  /** The flow key the new address would have. */
  readonly key: string;
  readonly client: TransportAddress;
  /** Tunnel header naming the new address, so forwarding is the same two-buffer send as a flow's. */
  readonly header: Buffer;
  /** The session's ufrag (the flow its SSRC came from, or the flow cache's record). */
  readonly ufrag: string;
  route: Route;
  readonly socketIndex: number;
  readonly via: EdgeHop | undefined;
  readonly expiresAt: number;
  /** Packets forwarded for it so far. */
  forwarded: number;
}

export interface PathCandidateLimits {
  /** Candidates held at once (a flood of forged SSRCs cannot grow the relay's memory past it). */
  readonly maxCandidates: number;
  /** How long a candidate waits for its transceiver to send to the new address (ms). */
  readonly ttlMs: number;
  /** Packets forwarded per candidate: what its transceiver verifies at most before it answers. */
  readonly maxPackets: number;
}

export const DEFAULT_PATH_CANDIDATE_LIMITS: PathCandidateLimits = {
  maxCandidates: 4_096,
  ttlMs: 2_000,
  maxPackets: 64,
};

export class PathCandidates {
  readonly limits: PathCandidateLimits;
  /** Oldest first (insertion order), so expiry stops at the first live one. */
  readonly #candidates = new Map<string, PathCandidate>();

  constructor(limits: PathCandidateLimits = DEFAULT_PATH_CANDIDATE_LIMITS) {
    this.limits = limits;
  }

  get size(): number {
    return this.#candidates.size;
  }

  /** The live candidate at `key`, if any. */
  get(key: string, now: number): PathCandidate | undefined {
    const candidate = this.#candidates.get(key);
    if (candidate === undefined) return undefined;
    if (candidate.expiresAt > now) return candidate;
    this.#candidates.delete(key);
    return undefined;
  }

  hasRoom(): boolean {
    return this.#candidates.size < this.limits.maxCandidates;
  }

  /** Adds a candidate expiring `ttlMs` from `now`. The caller checks hasRoom first. */
  add(fields: Omit<PathCandidate, 'expiresAt' | 'forwarded'>, now: number): PathCandidate {
    const candidate: PathCandidate = { ...fields, expiresAt: now + this.limits.ttlMs, forwarded: 0 };
    this.#candidates.delete(candidate.key);
    this.#candidates.set(candidate.key, candidate);
    return candidate;
  }

  /** Counts a packet forwarded for it; false once it has had its share. */
  admit(candidate: PathCandidate): boolean {
    if (candidate.forwarded >= this.limits.maxPackets) return false;
    candidate.forwarded++;
    return true;
  }

  delete(key: string): void {
    this.#candidates.delete(key);
  }

  /** Forgets candidates past their time; returns how many. */
  expire(now: number): number {
    let expired = 0;
    for (const [key, candidate] of this.#candidates) {
      if (candidate.expiresAt > now) break;
      this.#candidates.delete(key);
      expired++;
    }
    return expired;
  }

  /** Candidates whose transceiver is no longer routable go (the routing table changed). */
  retain(keep: (candidate: PathCandidate) => boolean): void {
    for (const [key, candidate] of this.#candidates) if (!keep(candidate)) this.#candidates.delete(key);
  }
}
