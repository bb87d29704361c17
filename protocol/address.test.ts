import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addressKey,
  bytesToIp,
  formatTransportAddress,
  ipToBytes,
  parseTransportAddress,
} from './address.ts';

const hex = (bytes: Buffer) => bytes.toString('hex');

/** How libuv (and so Node's dgram `rinfo`) prints an IPv6 address given in full 8-group form. */
const nodeFormat = (text: string): string => new SocketAddress({ address: text, family: 'ipv6' }).address;

/** The uncompressed 8-group form, written without any of address.ts. */
const fullForm = (bytes: Buffer): string => {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16).padStart(4, '0'));
  return groups.join(':');
};

describe('ipToBytes IPv4', () => {
  for (const [text, expected] of [
    ['0.0.0.0', '00000000'],
    ['255.255.255.255', 'ffffffff'],
    ['192.0.2.1', 'c0000201'],
    ['10.0.0.100', '0a000064'],
    ['1.2.3.4', '01020304'],
  ] as const) {
    it(`${text} → ${expected}`, () => assert.equal(hex(ipToBytes(text, 4)), expected));
  }

  for (const text of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.0',
    '1.2.3.256',
    '01.2.3.4',
    '1.2.3.04',
    '1.2.3.-1',
    '1.2.3.+1',
    'a.b.c.d',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.4/24',
    '1..3.4',
    '0x1.2.3.4',
    '1234.1.1.1',
    '::1',
    '::ffff:1.2.3.4',
  ]) {
    it(`rejects ${JSON.stringify(text)} with a RangeError naming it`, () => {
      assert.throws(
        () => ipToBytes(text, 4),
        (error: unknown) => error instanceof RangeError && error.message.includes(text),
      );
    });
  }
});

describe('ipToBytes IPv6', () => {
  for (const [text, expected] of [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['fe80::1', 'fe800000000000000000000000000001'],
    ['FE80::1', 'fe800000000000000000000000000001'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001'],
    ['fe80::1%2', 'fe800000000000000000000000000001'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '20010db8000000000000ff0000428329'],
    ['2001:db8::ff00:42:8329', '20010db8000000000000ff0000428329'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffffffffffffffffffffffffffffffff'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
    ['1::8', '00010000000000000000000000000008'],
    ['2001:db8:1234:5678:11:2233:4455:6677', '20010db8123456780011223344556677'],
    // Embedded IPv4 (RFC 4291 §2.2 form 3): mapped, compatible, NAT64, and after six groups.
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['::FFFF:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['::192.0.2.1', '000000000000000000000000c0000201'],
    ['::0.0.0.0', '00000000000000000000000000000000'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['0:0:0:0:0:ffff:1.2.3.4', '00000000000000000000ffff01020304'],
  ] as const) {
    it(`${text} → ${expected}`, () => assert.equal(hex(ipToBytes(text, 6)), expected));
  }

  for (const text of [
    '',
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '::1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8::',
    '12345::',
    'g::1',
    ':1::',
    '1::2:',
    ':1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:',
    '[::1]',
    ' ::1',
    '1.2.3.4',
    // Embedded IPv4 anywhere but at the end, or malformed.
    '1.2.3.4::',
    '1.2.3.4::5',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3',
    '::256.0.0.1',
    '::01.2.3.4',
    '::ffff:1.2.3.4.5',
    // Zone IDs: empty, or with characters Node's isIPv6 refuses.
    'fe80::1%',
    'fe80::1%eth 0',
    '%eth0',
  ]) {
    it(`rejects ${JSON.stringify(text)} with a RangeError naming it`, () => {
      assert.throws(
        () => ipToBytes(text, 6),
        (error: unknown) => error instanceof RangeError && error.message === `not an IPv6 address: ${text}`,
      );
    });
  }

  it('agrees with node:net isIPv6 on strings built from IPv6 pieces, and parses like libuv', () => {
    const piece = fc.constantFrom(
      '',
      '0',
      '1',
      '00',
      'ffff',
      'FFFF',
      'db8',
      '12345',
      'g',
      '1.2.3.4',
      '255.255.255.255',
      '01.2.3.4',
      '256.1.1.1',
      '1.2.3',
    );
    const separator = fc.constantFrom(':', ':', ':', '::', ':::');
    const candidate = fc
      .array(fc.tuple(piece, separator), { minLength: 1, maxLength: 10 })
      .chain((parts) => piece.map((last) => parts.map(([p, s]) => p + s).join('') + last));
    fc.assert(
      fc.property(candidate, (text) => {
        let bytes: Buffer | undefined;
        try {
          bytes = ipToBytes(text, 6);
        } catch (error) {
          assert.ok(error instanceof RangeError);
        }
        assert.equal(bytes !== undefined, isIPv6(text), text);
        if (bytes !== undefined) assert.equal(bytesToIp(bytes), nodeFormat(text), text);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with node:net isIPv4 on dotted strings', () => {
    const part = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.constantFrom('', '00', '01', '010', '-1', 'a', '1 '),
    );
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
        const text = parts.join('.');
        let ok = true;
        try {
          ipToBytes(text, 4);
        } catch {
          ok = false;
        }
        assert.equal(ok, isIPv4(text), text);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bytesToIp', () => {
  for (const [bytes, expected] of [
    ['00000000', '0.0.0.0'],
    ['ffffffff', '255.255.255.255'],
    ['c0000201', '192.0.2.1'],
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['00010000000000000000000000000000', '1::'],
    ['fe800000000000000000000000000001', 'fe80::1'],
    ['20010db8123456780011223344556677', '2001:db8:1234:5678:11:2233:4455:6677'],
    // RFC 5952 §4.2.2: a single zero group is not shortened.
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run is shortened, the first one on a tie.
    ['20010000000000010000000000000001', '2001:0:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['00010002000300040005000600070000', '1:2:3:4:5:6:7:0'],
    ['00000002000300040005000600070008', '0:2:3:4:5:6:7:8'],
    ['00010002000300040005000600000000', '1:2:3:4:5:6::'],
    // §4.3: lowercase.
    ['abcdef00000000000000000000000000', 'abcd:ef00::'],
    // The dotted forms libuv prints (so `rinfo.address` on a dual-stack socket): IPv4-mapped and
    // IPv4-compatible; NAT64 and other prefixes stay hexadecimal.
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'],
    ['00000000000000000000ffff00000000', '::ffff:0.0.0.0'],
    ['000000000000000000000000c0000201', '::192.0.2.1'],
    ['00000000000000000000000000010000', '::0.1.0.0'],
    ['00000000000000000000000000000002', '::2'],
    ['0000000000000000000000000000ffff', '::ffff'],
    ['0064ff9b0000000000000000c0000221', '64:ff9b::c000:221'],
    ['00000000000000000001ffffc0000201', '::1:ffff:c000:201'],
    ['00000000000000000000fffec0000201', '::fffe:c000:201'],
  ] as const) {
    it(`${bytes} → ${expected}`, () => {
      assert.equal(bytesToIp(Buffer.from(bytes, 'hex')), expected);
      if (bytes.length === 32) assert.equal(expected, nodeFormat(fullForm(Buffer.from(bytes, 'hex'))));
    });
  }

  for (const length of [0, 3, 5, 15, 17, 32]) {
    it(`rejects ${length} bytes`, () => {
      assert.throws(() => bytesToIp(Buffer.alloc(length)), RangeError);
    });
  }

  it('prints every IPv6 address exactly as Node does, and parses it back', () => {
    // Groups biased towards the values that select the special forms.
    const group = fc.oneof(
      fc.constant(0),
      fc.constant(0),
      fc.constant(0xffff),
      fc.constant(1),
      fc.integer({ min: 0, max: 0xffff }),
    );
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const bytes = Buffer.alloc(16);
        groups.forEach((g, i) => {
          bytes.writeUInt16BE(g, i * 2);
        });
        const text = bytesToIp(bytes);
        assert.equal(text, nodeFormat(fullForm(bytes)));
        assert.ok(isIPv6(text), text);
        assert.deepEqual(ipToBytes(text, 6), bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('round-trips every IPv4 address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (array) => {
        const bytes = Buffer.from(array);
        const text = bytesToIp(bytes);
        assert.ok(isIPv4(text), text);
        assert.deepEqual(ipToBytes(text, 4), bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same text as rinfo.address for an IPv4 client of a dual-stack socket', async (t) => {
    const server = createSocket({ type: 'udp6', ipv6Only: false });
    const client = createSocket('udp4');
    try {
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.bind(0, '::', () => resolve(true));
      });
      if (!bound) {
        t.skip('no IPv6 on this host');
        return;
      }
      const received = new Promise<string>((resolve) =>
        server.once('message', (_m, rinfo) => resolve(rinfo.address)),
      );
      client.send(Buffer.from('x'), server.address().port, '127.0.0.1');
      const seen = await received;
      assert.equal(seen, '::ffff:127.0.0.1');
      assert.equal(bytesToIp(ipToBytes(seen, 6)), seen);
    } finally {
      server.close();
      client.close();
    }
  });
});

describe('parseTransportAddress', () => {
  for (const [text, family, address, port] of [
    ['1.2.3.4:5678', 4, '1.2.3.4', 5678],
    ['0.0.0.0:0', 4, '0.0.0.0', 0],
    ['255.255.255.255:65535', 4, '255.255.255.255', 65535],
    ['[::1]:5678', 6, '::1', 5678],
    ['[::]:0', 6, '::', 0],
    ['[fe80::1]:65535', 6, 'fe80::1', 65535],
    ['[2001:DB8:0:0:0:0:0:0001]:443', 6, '2001:db8::1', 443],
    ['[1:2:3:4:5:6:7:8]:1', 6, '1:2:3:4:5:6:7:8', 1],
    ['[::ffff:192.0.2.1]:80', 6, '::ffff:192.0.2.1', 80],
    ['[::FFFF:c000:0201]:80', 6, '::ffff:192.0.2.1', 80],
    ['[64:ff9b::192.0.2.33]:80', 6, '64:ff9b::c000:221', 80],
    ['1.2.3.4:00080', 4, '1.2.3.4', 80],
  ] as const) {
    it(`${text} → ${family} ${address} ${port}`, () => {
      assert.deepEqual(parseTransportAddress(text), { family, address, port });
    });
  }

  for (const [text, message] of [
    ['1.2.3.4:65536', 'is not an address of the form'],
    ['1.2.3.4:99999', 'is not an address of the form'],
    ['1.2.3.4:123456', 'is not an address of the form'],
    ['1.2.3.4', 'is not an address of the form'],
    ['1.2.3.4:', 'is not an address of the form'],
    ['1.2.3.4:-1', 'is not an address of the form'],
    [':80', 'is not an address of the form'],
    ['::1:80', 'is not an address of the form'],
    ['[::1]', 'is not an address of the form'],
    ['[::1]:', 'is not an address of the form'],
    ['', 'is not an address of the form'],
    ['localhost:80', 'does not start with an IP literal'],
    ['example.com:443', 'does not start with an IP literal'],
    ['[1.2.3.4]:80', 'does not start with an IP literal'],
    ['[localhost]:80', 'does not start with an IP literal'],
    ['256.1.1.1:80', 'does not start with an IP literal'],
    ['01.2.3.4:80', 'does not start with an IP literal'],
    ['[1.2.3.4::]:80', 'does not start with an IP literal'],
  ] as const) {
    it(`rejects ${JSON.stringify(text)}: ${message}`, () => {
      assert.throws(
        () => parseTransportAddress(text),
        (error: unknown) => error instanceof RangeError && error.message.startsWith(`"${text}" ${message}`),
      );
    });
  }
});

describe('formatTransportAddress', () => {
  it('brackets IPv6 and not IPv4', () => {
    assert.equal(formatTransportAddress({ family: 4, address: '10.1.2.3', port: 7000 }), '10.1.2.3:7000');
    assert.equal(formatTransportAddress({ family: 6, address: 'fe80::1', port: 0 }), '[fe80::1]:0');
    assert.equal(formatTransportAddress({ family: 6, address: '::', port: 65535 }), '[::]:65535');
  });

  it('is the inverse of parseTransportAddress for canonical text', () => {
    for (const text of ['1.2.3.4:5', '[::1]:65535', '[2001:db8::1]:0', '[::ffff:1.2.3.4]:9']) {
      assert.equal(formatTransportAddress(parseTransportAddress(text)), text);
    }
  });
});

describe('addressKey', () => {
  it('joins address and port unambiguously', () => {
    assert.equal(addressKey('1.2.3.4', 5), '1.2.3.4|5');
    assert.equal(addressKey('::1', 80), '::1|80');
    assert.notEqual(addressKey('::1', 80), addressKey('::1:8', 0));
    assert.notEqual(addressKey('1.2.3.4', 5), addressKey('1.2.3.4', 50));
  });
});
