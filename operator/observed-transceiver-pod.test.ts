import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiBaseUrl, readTransceiverPod, tunnelAddress } from './observed-transceiver-pod.ts';
import { relayAddresses } from './relay-addresses.ts';
import { cluster } from './test-support/fixtures.ts';

const labels = {
  'app.kubernetes.io/instance': 'edge',
  'voice-edge.io/pool': 'echo',
  'voice-edge.io/transceiver-id': '9',
};

describe('readTransceiverPod', () => {
  it('reads what the operator acts on', () => {
    const pod = readTransceiverPod({
      metadata: {
        name: 'echo-9',
        namespace: 'voice',
        uid: 'u',
        labels,
        annotations: { 'voice-edge.io/draining-since': '1700000000', 'voice-edge.io/template-hash': 'h' },
        creationTimestamp: '2026-01-01T00:00:00Z',
        deletionTimestamp: '2026-01-01T00:01:00Z',
        ownerReferences: [{ uid: 'other' }, { uid: 'pool', controller: true }],
      },
      status: { podIP: '10.88.0.9', phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    assert.deepEqual(pod, {
      name: 'echo-9',
      namespace: 'voice',
      uid: 'u',
      cluster: 'edge',
      pool: 'echo',
      id: 9,
      ownerUid: 'pool',
      podIP: '10.88.0.9',
      phase: 'Running',
      ready: true,
      terminating: true,
      draining: true,
      drainingSince: 1_700_000_000,
      templateHash: 'h',
      createdAt: Date.parse('2026-01-01T00:00:00Z'),
    });
  });

  it('skips pods without a valid ID, pool or cluster label, and distrusts odd values', () => {
    assert.equal(
      readTransceiverPod({
        metadata: { name: 'x', labels: { ...labels, 'voice-edge.io/transceiver-id': 'x' } },
      }),
      undefined,
    );
    assert.equal(
      readTransceiverPod({ metadata: { name: 'x', labels: { ...labels, 'voice-edge.io/pool': '' } } }),
      undefined,
    );
    assert.equal(readTransceiverPod({ metadata: { labels } }), undefined);
    assert.equal(readTransceiverPod(null), undefined);
    const odd = readTransceiverPod({
      metadata: { name: 'x', labels, annotations: { 'voice-edge.io/draining-since': 'soon' } },
      status: { podIP: 'not-an-ip' },
    })!;
    assert.equal(odd.draining, true);
    assert.equal(odd.drainingSince, undefined);
    assert.equal(odd.podIP, undefined);
    assert.equal(odd.phase, 'Pending');
    assert.equal(odd.ready, false);
  });
});

describe('a pod IP of either family', () => {
  it('is kept, and the routing table names it bracketed when IPv6', () => {
    for (const [podIP, tunnel, api] of [
      ['10.88.0.9', '10.88.0.9:7000', 'http://10.88.0.9:8090'],
      ['fd00:10:244::9', '[fd00:10:244::9]:7000', 'http://[fd00:10:244::9]:8090'],
    ] as const) {
      const pod = readTransceiverPod({ metadata: { name: 'echo-9', labels }, status: { podIP } })!;
      assert.equal(pod.podIP, podIP);
      assert.equal(tunnelAddress(podIP), tunnel);
      assert.equal(apiBaseUrl(podIP), api);
      assert.equal(new URL(api).port, '8090');
    }
  });
});

describe('relayAddresses', () => {
  it('prefers spec.relay.publicAddresses', () => {
    const edge = cluster({ relay: { publicAddresses: ['198.51.100.1:3478'] } });
    assert.deepEqual(relayAddresses(edge, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } }), [
      '198.51.100.1:3478',
    ]);
  });

  it('uses load-balancer ingress IPs with the relay port, skipping hostnames', () => {
    const edge = cluster({ relay: { port: 3479 } });
    const service = {
      status: {
        loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { hostname: 'lb.example' }, { ip: '2001:db8::1' }] },
      },
    };
    assert.deepEqual(relayAddresses(edge, service), ['192.0.2.1:3479', '[2001:db8::1]:3479']);
    assert.deepEqual(relayAddresses(edge, undefined), []);
    // An IPv6-only Service; an address listed twice is advertised once.
    const ipv6 = { status: { loadBalancer: { ingress: [{ ip: '2001:db8::1' }, { ip: '2001:db8::1' }] } } };
    assert.deepEqual(relayAddresses(edge, ipv6), ['[2001:db8::1]:3479']);
  });
});
