// The local edge's addresses for each kind of --host (the whole edge on ::1 is test/e2e/ipv6.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHostPort } from '../protocol/host-port.ts';
import { RelayConfigSchema } from '../relay/config.ts';
import { relaySourcesFor, relayTunnelBind } from './edge.ts';
import { parseLocalFlags, USAGE } from './flags.ts';

describe('local edge addresses', () => {
  it('--host takes IPv4 and IPv6 addresses', () => {
    for (const host of ['127.0.0.1', '0.0.0.0', '::1', '::', 'fd00::2']) {
      const parsed = parseLocalFlags(['--host', host]);
      assert.equal(parsed.kind, 'run', host);
      assert.equal(parsed.kind === 'run' && parsed.flags.host, host);
    }
    assert.equal(parseLocalFlags(['--host', '[::1]']).kind, 'error', 'an address, not a URL host');
    assert.equal(parseLocalFlags(['--host', 'localhost']).kind, 'error');
    assert.match(USAGE, /--host .*IPv6/);
  });

  it("the relay's tunnel sockets: on the host's own address, an IPv6 one beside the IPv4 one", () => {
    assert.deepEqual(relayTunnelBind('127.0.0.1'), { bindV4: '127.0.0.1' });
    assert.deepEqual(relayTunnelBind('0.0.0.0'), { bindV4: '0.0.0.0' });
    // The transceiver listens on the IPv6 host: the relay reaches it from an IPv6 tunnel socket.
    assert.deepEqual(relayTunnelBind('::1'), { bindV4: '127.0.0.1', bindV6: '::1' });
    assert.deepEqual(relayTunnelBind('::'), { bindV4: '0.0.0.0', bindV6: '::' });
    assert.deepEqual(relayTunnelBind('fd00::2'), { bindV4: '127.0.0.1', bindV6: 'fd00::2' });
    for (const host of ['127.0.0.1', '::1', '::']) {
      const config = RelayConfigSchema.parse({
        clusterId: 1,
        listen: [formatHostPort(host, 3478)],
        routingTable: { file: 'routing.yaml' },
        tunnel: relayTunnelBind(host),
      });
      assert.equal(config.tunnel.bindV6, host.includes(':') ? host : undefined, host);
    }
  });

  it("the transceiver accepts tunnel datagrams from the relay's address", () => {
    assert.deepEqual(relaySourcesFor('127.0.0.1'), ['127.0.0.1']);
    assert.deepEqual(relaySourcesFor('::1'), ['::1']);
    assert.deepEqual(relaySourcesFor('0.0.0.0'), ['127.0.0.0/8']);
    assert.deepEqual(relaySourcesFor('::'), ['::1', '127.0.0.0/8']);
  });
});
