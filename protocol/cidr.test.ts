import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToIp } from './address.ts';
import { type Cidr, CidrSet, cidrContains, formatCidr, parseCidr } from './cidr.ts';

describe('parseCidr', () => {
  it('reads ranges and single addresses, clearing host bits', () => {
    assert.equal(formatCidr(parseCidr('10.1.2.3/8')), '10.0.0.0/8');
    assert.equal(formatCidr(parseCidr('198.18.2.2')), '198.18.2.2/32');
    assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
    assert.equal(formatCidr(parseCidr('2001:db8:ffff::1/33')), '2001:db8:8000::/33');
    assert.equal(formatCidr(parseCidr('::1')), '::1/128');
  });

  it('keeps an IPv4-mapped IPv6 range as the IPv4 range it is', () => {
    const cidr = parseCidr('::ffff:192.0.2.0/120');
    assert.equal(cidr.family, 4);
    assert.equal(formatCidr(cidr), '192.0.2.0/24');
  });

  it('refuses anything else with a message naming the input', () => {
    for (const [text, message] of [
      ['example.com', /does not start with an IP address/],
      ['10.0.0.0/33', /prefix length outside 0..32/],
      ['10.0.0.0/', /prefix length/],
      ['10.0.0.0/08', /prefix length/],
      ['2001:db8::/129', /outside 0..128/],
      ['10.0.0.256/8', /does not start/],
      ['', /does not start/],
    ] as const) {
      assert.throws(() => parseCidr(text), message, text);
    }
  });
});

describe('cidrContains', () => {
  it('matches inside, not outside; families do not mix except IPv4-mapped addresses', () => {
    const net = parseCidr('198.18.0.0/15');
    assert.equal(cidrContains(net, '198.18.0.1'), true);
    assert.equal(cidrContains(net, '198.19.255.255'), true);
    assert.equal(cidrContains(net, '198.20.0.0'), false);
    assert.equal(cidrContains(net, '::ffff:198.19.1.1'), true, 'a dual-stack socket reports IPv4 peers so');
    assert.equal(cidrContains(net, '2001:db8::1'), false);
    assert.equal(cidrContains(net, 'not-an-ip'), false);
    assert.equal(cidrContains(parseCidr('2001:db8::/32'), '2001:db8:1::5'), true);
    assert.equal(cidrContains(parseCidr('2001:db8::/32'), '2001:db9::5'), false);
  });

  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
  const toNumber = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);

  it('property: an IPv4 address is inside a /len exactly when its first len bits equal the network', () => {
    fc.assert(
      fc.property(ipv4, ipv4, fc.integer({ min: 0, max: 32 }), (network, address, length) => {
        const cidr = parseCidr(`${network}/${length}`);
        const shift = 2 ** (32 - length);
        const expected = Math.floor(toNumber(network) / shift) === Math.floor(toNumber(address) / shift);
        assert.equal(cidrContains(cidr, address), expected);
      }),
    );
  });

  it('property: every range contains its own network address, and a set agrees with its ranges', () => {
    const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToIp(Buffer.from(b)));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })),
            fc.tuple(ipv6, fc.integer({ min: 0, max: 128 })),
          ),
          { maxLength: 5 },
        ),
        fc.array(fc.oneof(ipv4, ipv6), { maxLength: 10 }),
        (specs, addresses) => {
          const ranges: Cidr[] = specs.map(([ip, len]) => parseCidr(`${ip}/${len}`));
          for (const cidr of ranges)
            assert.equal(cidrContains(cidr, bytesToIp(Buffer.from(cidr.network))), true);
          const set = new CidrSet(ranges, 3);
          for (const address of [...addresses, ...addresses]) {
            const expected = ranges.some((cidr) => cidrContains(cidr, address));
            assert.equal(set.contains(address), expected, address);
          }
        },
      ),
    );
  });
});
