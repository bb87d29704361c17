// Which client addresses a session may send to, as a function of (event, time, state): no sockets,
// no STUN encoding. docs/security.md explains the threat; in short, an integrity-checked Binding
// request proves only that its sender knows the session's ICE password, not that it can receive at
// the address it came from (a caller can spoof its source, anyone on the path can replay a check).
// So, as QUIC validates paths (RFC 9000 §8–9):
//
// - a new address becomes a *candidate* path; the transceiver sends it a challenge (a Binding
//   request keyed with the client's ICE password) and the path is *validated* only by a response
//   that carries the challenge's transaction ID — something only a receiver at that address sees;
// - until validated, a path gets at most `amplificationFactor` × the bytes received from it;
// - media goes to one validated path: the one the client's own media (DTLS, SRTP) arrived on last,
//   else the one it nominated (USE-CANDIDATE), else the first validated; a client with several
//   local addresses checks from all of them but sends media on its selected pair only, and a client
//   whose NAT rebinds sends its media from the new address, which takes over once validated;
// - a check whose transaction ID was already seen from another address is a replay and moves nothing;
// - verified checks per session are rate limited, and the set of remembered transaction IDs and of
//   paths is bounded, so a flood cannot grow a session's memory.
import type { TransportAddress } from '../protocol/address.ts';

export interface PathLimits {
  /** Bytes an unvalidated path may receive per byte it sent (QUIC: 3). */
  readonly amplificationFactor: number;
  /** Addresses a session tracks at once (validated or not). */
  readonly maxPaths: number;
  /** Outgoing packets held while no path is validated yet and the budget is spent. */
  readonly holdPackets: number;
  /** Recent check transaction IDs remembered to tell a retransmission from a replay. */
  readonly rememberedTransactions: number;
  /** A path's challenge is sent again on a later check after this long without an answer. */
  readonly challengeRetryMs: number;
  /** Verified checks accepted per second per session (token bucket), and its burst. */
  readonly checksPerSecond: number;
  readonly checkBurst: number;
}

export const DEFAULT_PATH_LIMITS: PathLimits = {
  amplificationFactor: 3,
  maxPaths: 8,
  holdPackets: 16,
  rememberedTransactions: 256,
  challengeRetryMs: 250,
  checksPerSecond: 50,
  checkBurst: 100,
};

export interface Path {
  readonly client: TransportAddress;
  readonly key: string;
  validated: boolean;
  bytesIn: number;
  bytesOut: number;
  /** The client nominated this path (a check with USE-CANDIDATE came from it). */
  nominated: boolean;
  /** When DTLS/SRTP/SRTCP last came from it (−∞: never). */
  lastDataAt: number;
  /** The outstanding challenge's transaction ID (binary string) and when it was sent. */
  challenge: { readonly transactionId: string; readonly sentAt: number } | undefined;
  lastSeen: number;
}

export type CheckVerdict =
  | {
      readonly kind: 'deliver';
      readonly path: Path;
      /** Send the path a (new) challenge. */
      readonly challenge: boolean;
      /** A path forgotten to make room for this one (its address is no longer the session's). */
      readonly evicted: string | undefined;
    }
  | { readonly kind: 'replayed' }
  | { readonly kind: 'rate-limited' }
  | { readonly kind: 'too-many-paths' };

export type SendVerdict =
  | { readonly kind: 'send'; readonly path: Path }
  | { readonly kind: 'held' }
  | { readonly kind: 'dropped' };

export class SessionPaths {
  readonly limits: PathLimits;
  /** The validated path media goes to. */
  #current: Path | undefined;
  /** Before any path is validated: where outgoing packets go, within its budget. */
  #preferred: Path | undefined;
  readonly #paths = new Map<string, Path>();
  /** transaction ID (binary string) → key of the path it came from; insertion order = age. */
  readonly #transactions = new Map<string, string>();
  #held: Buffer[] = [];
  #tokens: number;
  #refilledAt: number | undefined;

  constructor(limits: PathLimits = DEFAULT_PATH_LIMITS) {
    this.limits = limits;
    this.#tokens = limits.checkBurst;
  }

  get current(): Path | undefined {
    return this.#current;
  }

  get size(): number {
    return this.#paths.size;
  }

  get heldCount(): number {
    return this.#held.length;
  }

  /** What the session's paths look like (for logs when a call fails to connect). */
  describe(): { paths: number; validated: number; challenged: number; held: number; current: boolean } {
    let validated = 0;
    let challenged = 0;
    for (const path of this.#paths.values()) {
      if (path.validated) validated++;
      if (path.challenge !== undefined) challenged++;
    }
    return {
      paths: this.#paths.size,
      validated,
      challenged,
      held: this.#held.length,
      current: this.#current !== undefined,
    };
  }

  path(key: string): Path | undefined {
    return this.#paths.get(key);
  }

  /** A Binding request whose integrity verified, from `client`, `bytes` long. */
  onCheck(
    client: TransportAddress,
    key: string,
    transactionId: string,
    bytes: number,
    useCandidate: boolean,
    now: number,
  ): CheckVerdict {
    if (!this.#takeToken(now)) return { kind: 'rate-limited' };
    const seenFrom = this.#transactions.get(transactionId);
    if (seenFrom !== undefined && seenFrom !== key) return { kind: 'replayed' };
    const found = this.#pathFor(client, key, now);
    if (found === undefined) return { kind: 'too-many-paths' };
    const { path, evicted } = found;
    if (seenFrom === undefined) {
      this.#transactions.set(transactionId, key);
      if (this.#transactions.size > this.limits.rememberedTransactions)
        this.#transactions.delete(this.#transactions.keys().next().value!);
    }
    path.bytesIn += bytes;
    path.lastSeen = now;
    if (useCandidate && !path.nominated) {
      path.nominated = true;
      if (path.validated) this.#elect(path);
    }
    if (this.#current === undefined && (useCandidate || this.#preferred === undefined))
      this.#preferred = path;
    const challenge =
      !path.validated &&
      (path.challenge === undefined || now - path.challenge.sentAt >= this.limits.challengeRetryMs);
    return { kind: 'deliver', path, challenge, evicted };
  }

  /** A tracked path at `key`, or a new one (making room if it must); undefined when every path is in use. */
  #pathFor(
    client: TransportAddress,
    key: string,
    now: number,
  ): { path: Path; evicted: string | undefined } | undefined {
    const existing = this.#paths.get(key);
    if (existing !== undefined) return { path: existing, evicted: undefined };
    let evicted: string | undefined;
    if (this.#paths.size >= this.limits.maxPaths) {
      evicted = this.#evictOne();
      if (evicted === undefined) return undefined;
    }
    const path: Path = {
      client,
      key,
      validated: false,
      bytesIn: 0,
      bytesOut: 0,
      nominated: false,
      lastDataAt: Number.NEGATIVE_INFINITY,
      challenge: undefined,
      lastSeen: now,
    };
    this.#paths.set(key, path);
    return { path, evicted };
  }

  /**
   * May a packet from an unknown address be verified as the client's media (a candidate new path)?
   * Verification costs a cipher operation, so it takes a token of the same bucket as checks.
   */
  admitMediaCandidate(now: number): boolean {
    return this.#takeToken(now);
  }

  /**
   * The client's own SRTP, verified (authenticated, newer than anything accepted), from `client`:
   * the NAT rebound or the client moved. The address becomes a path, unvalidated like a checked one
   * (an attacker on the path could race a captured packet there), so it is challenged at once and
   * takes the media when it answers: one round trip, no ICE check needed.
   */
  onVerifiedMedia(client: TransportAddress, key: string, bytes: number, now: number): CheckVerdict {
    const found = this.#pathFor(client, key, now);
    if (found === undefined) return { kind: 'too-many-paths' };
    const { path, evicted } = found;
    path.bytesIn += bytes;
    path.lastSeen = now;
    path.lastDataAt = now;
    if (this.#current === undefined && this.#preferred === undefined) this.#preferred = path;
    const challenge =
      !path.validated &&
      (path.challenge === undefined || now - path.challenge.sentAt >= this.limits.challengeRetryMs);
    return { kind: 'deliver', path, challenge, evicted };
  }

  /** Any other packet from a tracked address (it counts toward the path's budget). */
  onData(key: string, bytes: number, now: number): Path | undefined {
    const path = this.#paths.get(key);
    if (path === undefined) return undefined;
    path.bytesIn += bytes;
    path.lastSeen = now;
    path.lastDataAt = now;
    if (path.validated && path !== this.#current) this.#elect(path);
    return path;
  }

  /**
   * Records a challenge of `bytes` sent to `path` if its budget allows; false if it does not (the
   * next check from the path, which adds to the budget, tries again).
   */
  startChallenge(path: Path, transactionId: string, bytes: number, now: number): boolean {
    if (!this.#withinBudget(path, bytes)) return false;
    path.bytesOut += bytes;
    path.challenge = { transactionId, sentAt: now };
    return true;
  }

  /**
   * A Binding success response (integrity already verified) from `key`. Validates the path when it
   * answers the path's outstanding challenge; returns the packets held for a first path, to send now.
   */
  onChallengeResponse(key: string, transactionId: string): { path: Path; release: Buffer[] } | undefined {
    const path = this.#paths.get(key);
    if (path?.challenge === undefined || path.challenge.transactionId !== transactionId) return undefined;
    path.challenge = undefined;
    path.validated = true;
    this.#elect(path);
    this.#preferred = undefined;
    const release = this.#held;
    this.#held = [];
    return { path, release };
  }

  /** Where a packet of the session's own (DTLS, SRTP, SCTP) goes. */
  routeData(packet: Buffer): SendVerdict {
    if (this.#current !== undefined) return { kind: 'send', path: this.#current };
    const preferred = this.#preferred;
    if (preferred !== undefined && this.#withinBudget(preferred, packet.length)) {
      preferred.bytesOut += packet.length;
      return { kind: 'send', path: preferred };
    }
    if (this.#held.length >= this.limits.holdPackets) return { kind: 'dropped' };
    this.#held.push(packet);
    return { kind: 'held' };
  }

  /** May a reply of `bytes` (a STUN response) go to the path at `key`? Accounts for it if so. */
  admitReply(key: string, bytes: number): Path | undefined {
    const path = this.#paths.get(key);
    if (path === undefined || !this.#withinBudget(path, bytes)) return undefined;
    if (!path.validated) path.bytesOut += bytes;
    return path;
  }

  /** The address went away (idle): forget its path. */
  forget(key: string): void {
    const path = this.#paths.get(key);
    if (path === undefined) return;
    this.#paths.delete(key);
    if (this.#current === path) this.#current = undefined;
    if (this.#preferred === path) this.#preferred = undefined;
  }

  /** Whether `candidate` (validated) should carry the media instead of the current path. */
  #elect(candidate: Path): void {
    const current = this.#current;
    if (
      current === undefined ||
      candidate.lastDataAt > current.lastDataAt ||
      (candidate.lastDataAt === current.lastDataAt && candidate.nominated && !current.nominated)
    )
      this.#current = candidate;
  }

  #withinBudget(path: Path, bytes: number): boolean {
    return path.validated || path.bytesOut + bytes <= this.limits.amplificationFactor * path.bytesIn;
  }

  /** Makes room for a new path: the least recently seen path that is not the one in use. */
  #evictOne(): string | undefined {
    let oldest: Path | undefined;
    for (const path of this.#paths.values())
      if (path !== this.#current && (oldest === undefined || path.lastSeen < oldest.lastSeen)) oldest = path;
    if (oldest === undefined) return undefined;
    this.forget(oldest.key);
    return oldest.key;
  }

  #takeToken(now: number): boolean {
    if (this.#refilledAt !== undefined) {
      const elapsed = Math.max(0, now - this.#refilledAt);
      this.#tokens = Math.min(
        this.limits.checkBurst,
        this.#tokens + (elapsed * this.limits.checksPerSecond) / 1000,
      );
    }
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
