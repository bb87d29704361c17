// Transport addresses: IP literals as bytes and as text, and `host:port` parsing for configuration.
// Only IP literals are accepted: the relay never resolves names on its packet path.
import { isIPv4, isIPv6 } from 'node:net';

export type AddressFamily = 4 | 6;

export interface TransportAddress {
  readonly family: AddressFamily;
  readonly address: string;
  readonly port: number;
}

/** IP literal → bytes. Throws on anything that is not an IP literal of the family. */
export function ipToBytes(address: string, family: AddressFamily): Buffer {
  if (family === 4) {
    const parts = address.split('.');
    if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${address}`);
    const out = Buffer.alloc(4);
    for (let i = 0; i < 4; i++) {
      const part = parts[i]!;
      if (!/^\d{1,3}$/.test(part) || Number(part) > 255)
        throw new RangeError(`not an IPv4 address: ${address}`);
      out[i] = Number(part);
    }
    return out;
  }
  return ipv6ToBytes(address);
}

function ipv6ToBytes(address: string): Buffer {
  const zone = address.indexOf('%');
  const text = zone === -1 ? address : address.slice(0, zone);
  const fail = (): never => {
    throw new RangeError(`not an IPv6 address: ${address}`);
  };
  const halves = text.split('::');
  if (halves.length > 2) fail();
  const parseGroups = (part: string): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = ipToBytes(piece, 4);
        groups.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        fail();
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) fail();
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i]!, i * 2);
  return out;
}

/** Bytes → IP literal, in the canonical forms Node's dgram reports (RFC 5952 for IPv6). */
export function bytesToIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError('an IP address is 4 or 16 bytes');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  // Longest run of two or more zero groups is shortened to '::' (first one on ties).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** Parses `1.2.3.4:5678` or `[::1]:5678`. Throws a RangeError that names the input. */
export function parseTransportAddress(text: string): TransportAddress {
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535)
    throw new RangeError(`"${text}" is not an address of the form ip:port or [ipv6]:port`);
  const address = match[1]!;
  if (bracketed && isIPv6(address)) return { family: 6, address: bytesToIp(ipToBytes(address, 6)), port };
  if (plain && isIPv4(address)) return { family: 4, address, port };
  throw new RangeError(`"${text}" does not start with an IP literal`);
}

export function formatTransportAddress(address: TransportAddress): string {
  return address.family === 6 ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** The same key Node's dgram `rinfo` gives for this address: used to index flows. */
export function addressKey(address: string, port: number): string {
  return `${address}|${port}`;
}
