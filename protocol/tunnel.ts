// The relay↔transceiver tunnel (docs/tunnel.md): one UDP datagram = a small header naming
// the client's public transport address, then the client's packet untouched.
//
//   0       magic 0xE7 (outside every RFC 7983 range, so never mistaken for a client packet)
//   1       version (high nibble, 1) | message type (low nibble): 1 a UDP client's packet,
//           2 a TCP client's packet (one RFC 4571 frame's payload, without its length)
//   2       address family: 4 or 6
//   3       reserved: sent as 0, ignored on receipt
//   4..5    client port
//   6..     client address: 4 bytes (IPv4) or 16 bytes (IPv6)
//
// Header size: 10 bytes for IPv4, 22 for IPv6.
import { type AddressFamily, bytesToIp, ipToBytes, type TransportAddress } from './address.ts';

export const TUNNEL_MAGIC = 0xe7;
export const TUNNEL_VERSION = 1;
export const TunnelMessageType = {
  /** A client's packet: relay → transceiver (from the client) or transceiver → relay (to the client). */
  Data: 1,
  /**
   * The same for a client connected over TCP (ICE-TCP): the address names its TCP connection, whose
   * port space is apart from UDP's. A receiver that predates it drops it as bad-type.
   */
  TcpData: 2,
} as const;
export const TUNNEL_HEADER_LENGTH_V4 = 10;
export const TUNNEL_HEADER_LENGTH_V6 = 22;

export type TunnelDecodeError = 'too-short' | 'bad-magic' | 'bad-version' | 'bad-type' | 'bad-family';

export interface TunnelPacket {
  readonly client: TransportAddress;
  /** The client's packet, a view into the datagram (no copy). */
  readonly payload: Buffer;
}

export type TunnelDecodeResult =
  | { ok: true; packet: TunnelPacket }
  | { ok: false; reason: TunnelDecodeError };

export function encodeTunnelHeader(client: TransportAddress): Buffer {
  const type = client.transport === 'tcp' ? TunnelMessageType.TcpData : TunnelMessageType.Data;
  const address = ipToBytes(client.address, client.family);
  if (!Number.isInteger(client.port) || client.port < 0 || client.port > 0xffff) {
    throw new RangeError(`bad client port ${client.port}`);
  }
  const header = Buffer.alloc(6 + address.length);
  header[0] = TUNNEL_MAGIC;
  header[1] = (TUNNEL_VERSION << 4) | type;
  header[2] = client.family;
  header.writeUInt16BE(client.port, 4);
  address.copy(header, 6);
  return header;
}

export function encodeTunnelPacket(client: TransportAddress, payload: Buffer): Buffer {
  return Buffer.concat([encodeTunnelHeader(client), payload]);
}

/** Length of a valid tunnel datagram's header (one that decodeTunnelPacket accepted): byte 2 is the family. */
export function tunnelHeaderLength(datagram: Buffer): number {
  return datagram[2] === 6 ? TUNNEL_HEADER_LENGTH_V6 : TUNNEL_HEADER_LENGTH_V4;
}

/** Reads the header; validates everything so a malformed datagram is a counted drop, never a throw. */
export function decodeTunnelPacket(datagram: Buffer): TunnelDecodeResult {
  if (datagram.length < TUNNEL_HEADER_LENGTH_V4) return { ok: false, reason: 'too-short' };
  if (datagram[0] !== TUNNEL_MAGIC) return { ok: false, reason: 'bad-magic' };
  const versionAndType = datagram[1]!;
  if (versionAndType >> 4 !== TUNNEL_VERSION) return { ok: false, reason: 'bad-version' };
  const type = versionAndType & 0x0f;
  if (type !== TunnelMessageType.Data && type !== TunnelMessageType.TcpData)
    return { ok: false, reason: 'bad-type' };
  const family = datagram[2];
  let headerLength: number;
  if (family === 4) headerLength = TUNNEL_HEADER_LENGTH_V4;
  else if (family === 6) headerLength = TUNNEL_HEADER_LENGTH_V6;
  else return { ok: false, reason: 'bad-family' };
  if (datagram.length < headerLength) return { ok: false, reason: 'too-short' };
  return {
    ok: true,
    packet: {
      client:
        type === TunnelMessageType.TcpData
          ? {
              family: family as AddressFamily,
              port: datagram.readUInt16BE(4),
              address: bytesToIp(datagram.subarray(6, headerLength)),
              transport: 'tcp',
            }
          : {
              family: family as AddressFamily,
              port: datagram.readUInt16BE(4),
              address: bytesToIp(datagram.subarray(6, headerLength)),
            },
      payload: datagram.subarray(headerLength),
    },
  };
}
