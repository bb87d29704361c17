// Transport addresses: IP literals as bytes and as text, and `host:port` parsing for configuration.
// Only IP literals are accepted: the relay never resolves names on its packet path.
import type { SocketOptions } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { formatHostPort } from './host-port.ts';

export type AddressFamily = 4 | 6;

export interface TransportAddress {
  readonly family: AddressFamily;
  readonly address: string;
  readonly port: number;
  /**
   * A client reached over TCP (ICE-TCP through a relay's TCP port, docs/reaching-the-edge.md); absent
   * for UDP, which is everything else. A TCP client and a UDP client may share address and port.
   */
  readonly transport?: 'tcp';
}

/** IP literal → bytes. Throws on anything that is not an IP literal of the family. */
export function ipToBytes(address: string, family: AddressFamily): Buffer {
  if (family === 4) {
    const parts = address.split('.');
    if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${address}`);
    const out = Buffer.alloc(4);
    for (let i = 0; i < 4; i++) {
      const part = parts[i]!;
      // No leading zeros: `010` is 8 to inet_aton and 10 to others; Node's isIPv4 rejects it too.
      if (!/^(?:0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255)
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
  // A zone ID (`fe80::1%eth0`) is accepted and dropped; same zone syntax as Node's isIPv6.
  if (zone !== -1 && !/^[0-9a-zA-Z.:-]+$/.test(address.slice(zone + 1))) fail();
  const halves = text.split('::');
  if (halves.length > 2) fail();
  // An embedded IPv4 address may only end the literal (`::ffff:1.2.3.4`), never precede `::`.
  const parseGroups = (part: string, last: boolean): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (last && i === pieces.length - 1 && piece.includes('.')) {
        let v4: Buffer;
        try {
          v4 = ipToBytes(piece, 4);
        } catch {
          return fail();
        }
        groups.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        fail();
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) fail();
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i]!, i * 2);
  return out;
}

/**
 * Bytes → IP literal, in the exact form Node's dgram reports in `rinfo.address` (libuv's inet_ntop:
 * RFC 5952 for IPv6, with the last 32 bits dotted for IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible
 * `::a.b.c.d`). Flows are keyed by that text, so the two must agree byte for byte.
 */
export function bytesToIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError('an IP address is 4 or 16 bytes');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0) {
    const dotted = `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
    if (groups[5] === 0xffff) return `::ffff:${dotted}`;
    if (groups[5] === 0 && groups[6] !== 0) return `::${dotted}`;
  }
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
  return formatHostPort(address.address, address.port);
}

/** The same key Node's dgram `rinfo` gives for this address: used to index flows. */
export function addressKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/** The key of a TCP client's connection: apart from the UDP key of the same address and port. */
export function tcpAddressKey(address: string, port: number): string {
  return `tcp|${address}|${port}`;
}

/** The flow key of a client, UDP or TCP. */
export function clientKey(client: TransportAddress): string {
  return client.transport === 'tcp'
    ? tcpAddressKey(client.address, client.port)
    : addressKey(client.address, client.port);
}

/**
 * Every destination voice-edge sends UDP to is an IP literal (validated at the boundary), so the name
 * lookup dgram performs before each unconnected send is answered at once. The default dns.lookup
 * also answers IP literals without I/O, but only on the next tick: one closure and one deferred
 * call per datagram, about a tenth of the relay's per-packet cost (bench:relay).
 */
export const literalLookup = ((
  address: string,
  family: number,
  callback: (error: null, address: string, family: number) => void,
) => callback(null, address, family)) as unknown as NonNullable<SocketOptions['lookup']>;
