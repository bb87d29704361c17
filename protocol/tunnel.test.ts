import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { TransportAddress } from './address.ts';
import { classifyPacket } from './packet-kind.ts';
import {
  decodeTunnelPacket,
  encodeTunnelHeader,
  encodeTunnelPacket,
  TUNNEL_HEADER_LENGTH_V4,
  TUNNEL_HEADER_LENGTH_V6,
  TUNNEL_MAGIC,
  TUNNEL_VERSION,
  TunnelMessageType,
} from './tunnel.ts';

const v4 = (address: string, port: number): TransportAddress => ({ family: 4, address, port });
const v6 = (address: string, port: number): TransportAddress => ({ family: 6, address, port });
const tcp = (client: TransportAddress): TransportAddress => ({ ...client, transport: 'tcp' });

describe('tunnel constants', () => {
  it('match the documented header', () => {
    assert.equal(TUNNEL_MAGIC, 0xe7);
    assert.equal(TUNNEL_VERSION, 1);
    assert.equal(TunnelMessageType.Data, 1);
    assert.equal(TunnelMessageType.TcpData, 2);
    assert.equal(TUNNEL_HEADER_LENGTH_V4, 10);
    assert.equal(TUNNEL_HEADER_LENGTH_V6, 22);
    assert.ok(TUNNEL_HEADER_LENGTH_V6 <= 24, 'docs/tunnel.md: at most 24 bytes for IPv6');
  });

  it('the magic byte is outside every RFC 7983 range, so a tunnel packet is never a client packet', () => {
    assert.equal(classifyPacket(Buffer.from([TUNNEL_MAGIC])), 'unknown');
    assert.equal(classifyPacket(encodeTunnelPacket(v4('1.2.3.4', 5), Buffer.from([0x00, 0x01]))), 'unknown');
  });
});

describe('encodeTunnelHeader', () => {
  it('writes the IPv4 form byte for byte', () => {
    assert.equal(
      encodeTunnelHeader(v4('203.0.113.7', 50000)).toString('hex'),
      'e7' + '11' + '04' + '00' + 'c350' + 'cb007107',
    );
  });

  it('writes the IPv6 form byte for byte', () => {
    assert.equal(
      encodeTunnelHeader(v6('2001:db8::1', 443)).toString('hex'),
      'e7' + '11' + '06' + '00' + '01bb' + '20010db8000000000000000000000001',
    );
  });

  it('accepts ports 0 and 65535', () => {
    assert.equal(encodeTunnelHeader(v4('1.2.3.4', 0)).readUInt16BE(4), 0);
    assert.equal(encodeTunnelHeader(v6('::1', 65535)).readUInt16BE(4), 65535);
  });

  it('refuses bad ports', () => {
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      assert.throws(() => encodeTunnelHeader(v4('1.2.3.4', port)), /bad client port/, String(port));
    }
  });

  it('refuses an address that is not an IP literal of its family', () => {
    assert.throws(() => encodeTunnelHeader(v4('::1', 1)), RangeError);
    assert.throws(() => encodeTunnelHeader(v6('1.2.3.4', 1)), RangeError);
    assert.throws(() => encodeTunnelHeader(v4('localhost', 1)), RangeError);
  });
});

describe('encodeTunnelPacket and decodeTunnelPacket', () => {
  const clients: TransportAddress[] = [
    v4('0.0.0.0', 0),
    v4('255.255.255.255', 65535),
    v4('192.0.2.1', 32853),
    v6('::', 0),
    v6('::1', 65535),
    v6('fe80::1', 5000),
    v6('1:2:3:4:5:6:7:8', 1),
    v6('2001:db8:1234:5678:11:2233:4455:6677', 32853),
    v6('::ffff:192.0.2.1', 40000),
  ];
  for (const client of clients) {
    it(`round-trips ${client.address} port ${client.port}`, () => {
      const payload = Buffer.from('16fefd0000000000000001', 'hex');
      const datagram = encodeTunnelPacket(client, payload);
      assert.equal(datagram.length, (client.family === 4 ? 10 : 22) + payload.length);
      const result = decodeTunnelPacket(datagram);
      assert.ok(result.ok);
      assert.deepEqual(result.packet.client, client);
      assert.deepEqual(result.packet.payload, payload);
    });
  }

  for (const client of [tcp(v4('192.0.2.1', 443)), tcp(v6('2001:db8::7', 50000))]) {
    it(`round-trips a TCP client ${client.address} port ${client.port} as type 2`, () => {
      const datagram = encodeTunnelPacket(client, Buffer.from('x'));
      assert.equal(datagram[1], 0x12);
      const result = decodeTunnelPacket(datagram);
      assert.ok(result.ok);
      assert.deepEqual(result.packet.client, client);
    });
  }

  it('a TCP client and a UDP client of the same address and port stay apart', () => {
    const udp = decodeTunnelPacket(encodeTunnelPacket(v4('192.0.2.1', 443), Buffer.alloc(0)));
    const overTcp = decodeTunnelPacket(encodeTunnelPacket(tcp(v4('192.0.2.1', 443)), Buffer.alloc(0)));
    assert.ok(udp.ok && overTcp.ok);
    assert.equal(udp.packet.client.transport, undefined);
    assert.equal(overTcp.packet.client.transport, 'tcp');
  });

  it('normalizes an IPv6 address to the form Node reports', () => {
    const result = decodeTunnelPacket(encodeTunnelPacket(v6('2001:DB8:0:0:0:0:0:1', 9), Buffer.alloc(0)));
    assert.ok(result.ok);
    assert.equal(result.packet.client.address, '2001:db8::1');
  });

  it('carries an empty payload', () => {
    for (const client of [v4('1.2.3.4', 5), v6('::1', 5)]) {
      const result = decodeTunnelPacket(encodeTunnelPacket(client, Buffer.alloc(0)));
      assert.ok(result.ok);
      assert.equal(result.packet.payload.length, 0);
    }
  });

  it('returns the payload as a view of the datagram', () => {
    const datagram = encodeTunnelPacket(v4('1.2.3.4', 5), Buffer.from('payload'));
    const result = decodeTunnelPacket(datagram);
    assert.ok(result.ok);
    assert.equal(result.packet.payload.buffer, datagram.buffer);
    assert.equal(result.packet.payload.byteOffset, datagram.byteOffset + 10);
  });

  it('ignores the reserved byte', () => {
    const datagram = encodeTunnelPacket(v6('::1', 5), Buffer.from('x'));
    datagram[3] = 0xff;
    const result = decodeTunnelPacket(datagram);
    assert.ok(result.ok);
    assert.deepEqual(result.packet.client, v6('::1', 5));
  });

  it('round-trips random clients and payloads', () => {
    const client = fc.oneof(
      fc
        .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }))
        .map(([bytes, port]) => v4([...bytes].join('.'), port)),
      fc
        .tuple(
          fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
          fc.integer({ min: 0, max: 65535 }),
        )
        .map(([groups, port]) => v6(groups.map((g) => g.toString(16)).join(':'), port)),
    );
    fc.assert(
      fc.property(client, fc.uint8Array({ maxLength: 1500 }), (c, payload) => {
        const result = decodeTunnelPacket(encodeTunnelPacket(c, Buffer.from(payload)));
        assert.ok(result.ok);
        assert.equal(result.packet.client.family, c.family);
        assert.equal(result.packet.client.port, c.port);
        assert.deepEqual(encodeTunnelHeader(result.packet.client), encodeTunnelHeader(c));
        assert.deepEqual(result.packet.payload, Buffer.from(payload));
      }),
      { numRuns: 500 },
    );
  });
});

describe('the examples in docs/tunnel.md', () => {
  it('IPv4, relay → transceiver: a STUN Binding indication from 203.0.113.7:50000', () => {
    const stun = Buffer.from('001100002112a442b7e7a701bc34d686fa87dfae', 'hex');
    const datagram = encodeTunnelPacket(v4('203.0.113.7', 50000), stun);
    assert.equal(datagram.toString('hex'), 'e7110400c350cb007107001100002112a442b7e7a701bc34d686fa87dfae');
    assert.deepEqual(decodeTunnelPacket(datagram), {
      ok: true,
      packet: { client: v4('203.0.113.7', 50000), payload: stun },
    });
  });

  it('IPv6, transceiver → relay: an RTP packet for [2001:db8::1]:443', () => {
    const rtp = Buffer.from('80e01234000003e8deadbeeff8fffe', 'hex');
    const datagram = encodeTunnelPacket(v6('2001:db8::1', 443), rtp);
    assert.equal(
      datagram.toString('hex'),
      'e711060001bb20010db800000000000000000000000180e01234000003e8deadbeeff8fffe',
    );
    assert.deepEqual(decodeTunnelPacket(datagram), {
      ok: true,
      packet: { client: v6('2001:db8::1', 443), payload: rtp },
    });
  });

  it('IPv4 TCP client, relay → transceiver: a framed packet from 198.51.100.4:51234 over ICE-TCP', () => {
    const dtls = Buffer.from('16fefd00000000000000000001ff', 'hex');
    const datagram = encodeTunnelPacket(tcp(v4('198.51.100.4', 51234)), dtls);
    assert.equal(datagram.toString('hex'), 'e7120400c822c633640416fefd00000000000000000001ff');
    assert.deepEqual(decodeTunnelPacket(datagram), {
      ok: true,
      packet: { client: tcp(v4('198.51.100.4', 51234)), payload: dtls },
    });
  });
});

describe('decodeTunnelPacket errors', () => {
  const good4 = encodeTunnelPacket(v4('1.2.3.4', 5), Buffer.from('abc'));
  const good6 = encodeTunnelPacket(v6('::1', 5), Buffer.from('abc'));
  const withByte = (datagram: Buffer, index: number, value: number) => {
    const copy = Buffer.from(datagram);
    copy[index] = value;
    return copy;
  };

  const cases: [string, Buffer, string][] = [
    ['empty', Buffer.alloc(0), 'too-short'],
    ['9 bytes', good4.subarray(0, 9), 'too-short'],
    ['IPv6 header cut at 21 bytes', good6.subarray(0, 21), 'too-short'],
    ['IPv6 family in a 10-byte datagram', withByte(good4.subarray(0, 10), 2, 6), 'too-short'],
    ['magic 0xe6', withByte(good4, 0, 0xe6), 'bad-magic'],
    ['a STUN packet', Buffer.concat([Buffer.from('000100002112a442', 'hex'), Buffer.alloc(12)]), 'bad-magic'],
    ['version 0', withByte(good4, 1, 0x01), 'bad-version'],
    ['version 2', withByte(good4, 1, 0x21), 'bad-version'],
    ['version 15', withByte(good4, 1, 0xf1), 'bad-version'],
    ['type 0', withByte(good4, 1, 0x10), 'bad-type'],
    ['type 3', withByte(good4, 1, 0x13), 'bad-type'],
    ['type 15', withByte(good4, 1, 0x1f), 'bad-type'],
    ['family 0', withByte(good4, 2, 0), 'bad-family'],
    ['family 5', withByte(good4, 2, 5), 'bad-family'],
    ['family 0x46', withByte(good4, 2, 0x46), 'bad-family'],
  ];
  for (const [name, datagram, reason] of cases) {
    it(`${name} → ${reason}`, () => assert.deepEqual(decodeTunnelPacket(datagram), { ok: false, reason }));
  }

  it('reads an exactly 10- or 22-byte header-only datagram', () => {
    assert.equal(decodeTunnelPacket(good4.subarray(0, 10)).ok, true);
    assert.equal(decodeTunnelPacket(good6.subarray(0, 22)).ok, true);
  });
});
