// IP address ranges (`10.0.0.0/8`, `2001:db8::/32`, or one address): which sources a cluster relay
// accepts edge-tunnel traffic from, and which client addresses signaling maps to a region. Pure.
//
// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4
// peer) is matched as the IPv4 address it carries, so one list serves IPv4 and dual-stack sockets.
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { type AddressFamily, bytesToIp, ipToBytes } from './address.ts';

export interface Cidr {
  readonly family: AddressFamily;
  /** The network address with the host bits cleared (a Uint8Array: it crosses to worker threads). */
  readonly network: Uint8Array;
  readonly prefixLength: number;
}

function familyOf(address: string): AddressFamily | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

/** The bytes to match an address with: IPv4-mapped IPv6 becomes IPv4. undefined for a non-IP. */
function matchBytes(address: string): Buffer | undefined {
  const family = familyOf(address);
  if (family === undefined) return undefined;
  const bytes = ipToBytes(address, family);
  if (family === 6 && isV4Mapped(bytes)) return bytes.subarray(12);
  return bytes;
}

function isV4Mapped(bytes: Buffer): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Parses `ip/len` or a bare `ip` (a single address). Throws a RangeError naming the input. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = familyOf(address);
  if (family === undefined) throw new RangeError(`"${text}" does not start with an IP address`);
  const maxLength = family === 4 ? 32 : 128;
  let prefixLength = maxLength;
  if (slash !== -1) {
    const lengthText = text.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > maxLength)
      throw new RangeError(`"${text}" has a prefix length outside 0..${maxLength}`);
    prefixLength = Number(lengthText);
  }
  let network = ipToBytes(address, family);
  let networkFamily: AddressFamily = family;
  // ::ffff:a.b.c.d/len ≥ 96 is an IPv4 range written in IPv6: keep it as IPv4 so it matches both.
  if (family === 6 && isV4Mapped(network) && prefixLength >= 96) {
    network = Buffer.from(network.subarray(12));
    networkFamily = 4;
    prefixLength -= 96;
  }
  return { family: networkFamily, network: masked(network, prefixLength), prefixLength };
}

function masked(bytes: Buffer, prefixLength: number): Buffer {
  const out = Buffer.from(bytes);
  for (let bit = prefixLength; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

export function formatCidr(cidr: Cidr): string {
  return `${bytesToIp(Buffer.from(cidr.network))}/${cidr.prefixLength}`;
}

/** True if `address` (an IP literal as dgram or Node's HTTP server reports it) is inside `cidr`. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  const bytes = matchBytes(address);
  return bytes !== undefined && bytesInside(cidr, bytes);
}

function bytesInside(cidr: Cidr, bytes: Uint8Array): boolean {
  if (bytes.length !== cidr.network.length) return false;
  const full = cidr.prefixLength >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== cidr.network[i]) return false;
  const rest = cidr.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full]! & mask) === cidr.network[full];
}

/**
 * A set of ranges with a per-address answer cache: the relay asks about the same few edge relay
 * addresses for every datagram they send, so after the first datagram the answer is one Map lookup.
 */
export class CidrSet {
  readonly ranges: readonly Cidr[];
  readonly #answers = new Map<string, boolean>();
  readonly #maxAnswers: number;

  constructor(ranges: readonly Cidr[], maxAnswers = 4096) {
    this.ranges = ranges;
    this.#maxAnswers = maxAnswers;
  }

  get size(): number {
    return this.ranges.length;
  }

  contains(address: string): boolean {
    const known = this.#answers.get(address);
    if (known !== undefined) return known;
    const bytes = matchBytes(address);
    const answer = bytes !== undefined && this.ranges.some((cidr) => bytesInside(cidr, bytes));
    // Bounded: spoofed sources cannot grow it; past the bound answers are computed every time.
    if (this.#answers.size < this.#maxAnswers) this.#answers.set(address, answer);
    return answer;
  }
}

/** A CIDR in configuration or a routing table: `10.0.0.0/8`, `2001:db8::/32` or one address. */
export const CidrSchema = z.string().transform((text, context): Cidr => {
  try {
    return parseCidr(text);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});
