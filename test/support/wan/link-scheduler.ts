// The WAN emulator's decisions, pure (docs/global-tier.md, "The delay element"): which emulated link
// an IP packet travels (from its source and destination addresses), and when it leaves that link,
// or whether it is lost. The TUN I/O around it is wan-router.ts; nothing here reads a clock or a
// device, so a seeded run decides the same way every time.
import { type Cidr, cidrContains, parseCidr } from '../../../protocol/cidr.ts';

/** One direction of a link. */
export interface LinkSpec {
  /** One-way delay (ms). */
  readonly delayMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per packet (ms). */
  readonly jitterMs: number;
  /** Probability (0–100) that a packet is lost. */
  readonly lossPercent: number;
}

export interface SiteSpec {
  readonly name: string;
  /** The addresses of this site (CIDRs). */
  readonly networks: readonly string[];
}

export interface LinkBetween {
  /** Site names: packets from `a` to `b` use `ab`, from `b` to `a` use `ba` (defaults to `ab`). */
  readonly a: string;
  readonly b: string;
  readonly ab: LinkSpec;
  readonly ba?: LinkSpec;
}

export interface WanSpec {
  readonly sites: readonly SiteSpec[];
  readonly links: readonly LinkBetween[];
  /** PRNG seed: the same seed and the same packets give the same delays and losses. */
  readonly seed: number;
}

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). Quality is ample for loss and jitter. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Source and destination of an IPv4 or IPv6 packet, or undefined for anything else. */
export function ipEndpoints(packet: Uint8Array): { source: string; destination: string } | undefined {
  const version = packet[0] === undefined ? 0 : packet[0] >> 4;
  if (version === 4 && packet.length >= 20) {
    const ip = (offset: number) =>
      `${packet[offset]}.${packet[offset + 1]}.${packet[offset + 2]}.${packet[offset + 3]}`;
    return { source: ip(12), destination: ip(16) };
  }
  if (version === 6 && packet.length >= 40) {
    const ip = (offset: number) => {
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2)
        groups.push(((packet[offset + i]! << 8) | packet[offset + i + 1]!).toString(16));
      return groups.join(':');
    };
    return { source: ip(8), destination: ip(24) };
  }
  return undefined;
}

/** 'drop', or the time (ms, same clock as `now`) at which the packet leaves its link. */
export type Verdict = number | 'drop';

/**
 * Per-direction delay, jitter and loss between named sites. Packets of one direction of one link
 * leave in the order they arrived (no reordering: jitter shows as varying delay, as on a real path
 * whose queue varies). Packets between sites with no link (or outside every site) pass at once.
 */
export class LinkScheduler {
  readonly #sites: Array<{ name: string; networks: Cidr[] }>;
  readonly #links = new Map<string, LinkSpec>();
  /** Last departure time per directed link, for FIFO order. */
  readonly #lastDeparture = new Map<string, number>();
  readonly #random: () => number;
  readonly counts = { passed: 0, delayed: 0, dropped: 0 };

  constructor(spec: WanSpec) {
    this.#sites = spec.sites.map((site) => ({ name: site.name, networks: site.networks.map(parseCidr) }));
    const names = new Set(spec.sites.map((site) => site.name));
    for (const link of spec.links) {
      for (const name of [link.a, link.b])
        if (!names.has(name)) throw new RangeError(`link ${link.a}–${link.b}: no site named ${name}`);
      for (const direction of [link.ab, link.ba ?? link.ab]) checkLink(direction, `${link.a}–${link.b}`);
      this.#links.set(`${link.a}>${link.b}`, link.ab);
      this.#links.set(`${link.b}>${link.a}`, link.ba ?? link.ab);
    }
    this.#random = mulberry32(spec.seed);
  }

  siteOf(address: string): string | undefined {
    return this.#sites.find((site) => site.networks.some((network) => cidrContains(network, address)))?.name;
  }

  /** The directed link a packet from `source` to `destination` takes, if any. */
  linkOf(source: string, destination: string): { key: string; spec: LinkSpec } | undefined {
    const from = this.siteOf(source);
    const to = this.siteOf(destination);
    if (from === undefined || to === undefined) return undefined;
    const key = `${from}>${to}`;
    const spec = this.#links.get(key);
    return spec === undefined ? undefined : { key, spec };
  }

  /** The verdict for an IP packet that arrived at `now` (ms). */
  schedule(packet: Uint8Array, now: number): Verdict {
    const endpoints = ipEndpoints(packet);
    const link = endpoints === undefined ? undefined : this.linkOf(endpoints.source, endpoints.destination);
    if (link === undefined) {
      this.counts.passed++;
      return now;
    }
    return this.#decide(link.key, link.spec, now);
  }

  #decide(key: string, spec: LinkSpec, now: number): Verdict {
    // Draw both numbers for every packet so one packet's fate does not shift the next one's.
    const lossDraw = this.#random();
    const jitterDraw = this.#random();
    if (lossDraw * 100 < spec.lossPercent) {
      this.counts.dropped++;
      return 'drop';
    }
    const departure = Math.max(
      now + spec.delayMs + jitterDraw * spec.jitterMs,
      this.#lastDeparture.get(key) ?? 0,
    );
    this.#lastDeparture.set(key, departure);
    this.counts.delayed++;
    return departure;
  }
}

function checkLink(spec: LinkSpec, name: string): void {
  const finite = (value: number) => Number.isFinite(value) && value >= 0;
  if (!finite(spec.delayMs) || !finite(spec.jitterMs))
    throw new RangeError(`link ${name}: delay and jitter must be ≥ 0 ms`);
  if (!finite(spec.lossPercent) || spec.lossPercent > 100)
    throw new RangeError(`link ${name}: loss must be 0–100 %`);
}
