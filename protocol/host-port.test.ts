import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTransportAddress } from './address.ts';
import { bracketHost, formatHostPort, originOf } from './host-port.ts';

describe('host:port text', () => {
  it('writes IPv4 addresses and names as they are', () => {
    assert.equal(formatHostPort('127.0.0.1', 3478), '127.0.0.1:3478');
    assert.equal(formatHostPort('0.0.0.0', 0), '0.0.0.0:0');
    assert.equal(formatHostPort('echo.voice', 9000), 'echo.voice:9000');
  });

  it('puts IPv6 literals in brackets, once', () => {
    assert.equal(formatHostPort('::1', 3478), '[::1]:3478');
    assert.equal(formatHostPort('::', 3478), '[::]:3478');
    assert.equal(formatHostPort('2001:db8::7', 443), '[2001:db8::7]:443');
    assert.equal(formatHostPort('::ffff:192.0.2.1', 7000), '[::ffff:192.0.2.1]:7000');
    assert.equal(formatHostPort('[::1]', 3478), '[::1]:3478', 'already bracketed');
    assert.equal(bracketHost('fd00::9'), '[fd00::9]');
    assert.equal(bracketHost('10.88.0.9'), '10.88.0.9');
  });

  it('writes what parseTransportAddress reads back, for both families', () => {
    for (const [host, family] of [
      ['127.0.0.1', 4],
      ['10.88.0.9', 4],
      ['::1', 6],
      ['::', 6],
      ['fd00::9', 6],
      ['2001:db8::1:0:0:1', 6],
    ] as const) {
      assert.deepEqual(parseTransportAddress(formatHostPort(host, 7000)), {
        family,
        address: host,
        port: 7000,
      });
    }
  });

  it('makes URLs that the URL parser reads as host and port', () => {
    for (const [scheme, host, port, hostname] of [
      ['http', '127.0.0.1', 8080, '127.0.0.1'],
      ['http', '::1', 8080, '[::1]'],
      ['ws', 'fd00::9', 8765, '[fd00::9]'],
      ['wss', 'echo.voice', 443, 'echo.voice'],
    ] as const) {
      const url = new URL(`${originOf(scheme, host, port)}/whip`);
      assert.equal(url.hostname, hostname);
      assert.equal(url.protocol, `${scheme}:`);
      assert.equal(url.pathname, '/whip');
      // The URL parser leaves out a scheme's default port.
      assert.equal(url.port, scheme === 'wss' && port === 443 ? '' : String(port));
    }
  });
});
