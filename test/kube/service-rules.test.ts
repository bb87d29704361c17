import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { renderRules, serviceFrontends, staleUdpEntries } from './service-rules.ts';

const nodeIP = '10.88.0.1';
const chains = { services: 'VEK-SERVICES', postrouting: 'VEK-POSTROUTING', forward: 'VEK-FORWARD' };

function service(name: string, spec: V1Service['spec']): V1Service {
  return { metadata: { name, namespace: 'ns' }, spec };
}

function slice(
  serviceName: string,
  ports: V1EndpointSlice['ports'],
  endpoints: V1EndpointSlice['endpoints'],
) {
  return {
    addressType: 'IPv4',
    metadata: {
      name: `${serviceName}-x`,
      namespace: 'ns',
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    ports,
    endpoints,
  } satisfies V1EndpointSlice;
}

describe('serviceFrontends', () => {
  test('a LoadBalancer UDP Service: ClusterIP, NodePort and nodeIP:port, ready endpoints only', () => {
    const relay = service('relay', {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.10',
      ports: [{ name: 'udp', protocol: 'UDP', port: 3478, targetPort: 3478, nodePort: 31000 }],
    });
    const endpoints = slice(
      'relay',
      [{ name: 'udp', protocol: 'UDP', port: 3478 }],
      [
        { addresses: ['10.88.0.5'], conditions: { ready: true } },
        { addresses: ['10.88.0.6'], conditions: { ready: false } },
        { addresses: ['10.88.0.7'] },
        { addresses: ['10.88.0.8'], conditions: { ready: true, terminating: true } },
      ],
    );
    const other = {
      ...slice('other', [{ name: 'udp', protocol: 'UDP', port: 1 }], [{ addresses: ['10.88.0.9'] }]),
    };
    const frontends = serviceFrontends([relay], [endpoints, other], nodeIP);
    assert.deepEqual(
      frontends.map((f) => [f.comment, f.protocol, `${f.ip}:${f.port}`, f.endpoints]),
      [
        ['ns/relay:udp cluster-ip', 'udp', '10.96.0.10:3478', ['10.88.0.5:3478', '10.88.0.7:3478']],
        ['ns/relay:udp load-balancer', 'udp', '10.88.0.1:3478', ['10.88.0.5:3478', '10.88.0.7:3478']],
        ['ns/relay:udp node-port', 'udp', '10.88.0.1:31000', ['10.88.0.5:3478', '10.88.0.7:3478']],
      ],
    );
  });

  test('ports are matched by name and protocol; headless and ExternalName Services have no frontend', () => {
    const web = service('web', {
      type: 'NodePort',
      clusterIP: '10.96.0.11',
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, nodePort: 30080 },
        { name: 'metrics', protocol: 'TCP', port: 9090 },
      ],
    });
    const endpoints = slice(
      'web',
      [
        { name: 'http', protocol: 'TCP', port: 8080 },
        { name: 'metrics', protocol: 'TCP', port: 9091 },
      ],
      [{ addresses: ['10.88.0.5'] }],
    );
    const headless = service('headless', { clusterIP: 'None', ports: [{ port: 1 }] });
    const external = service('ext', { type: 'ExternalName', externalName: 'example.com' });
    const frontends = serviceFrontends([web, headless, external], [endpoints], nodeIP);
    assert.deepEqual(
      frontends.map((f) => [f.comment, `${f.ip}:${f.port}`, f.endpoints]),
      [
        ['ns/web:http cluster-ip', '10.96.0.11:80', ['10.88.0.5:8080']],
        ['ns/web:http node-port', '10.88.0.1:30080', ['10.88.0.5:8080']],
        ['ns/web:metrics cluster-ip', '10.96.0.11:9090', ['10.88.0.5:9091']],
      ],
    );
  });
});

describe('renderRules', () => {
  test('spreads over n endpoints with probabilities 1/n, 1/(n-1), …, then unconditionally', () => {
    const text = renderRules(
      [
        {
          comment: 'ns/relay:udp node-port',
          protocol: 'udp',
          ip: nodeIP,
          port: 31000,
          endpoints: ['10.88.0.5:3478', '10.88.0.6:3478', '10.88.0.7:3478'],
        },
        { comment: 'ns/empty:x node-port', protocol: 'tcp', ip: nodeIP, port: 31001, endpoints: [] },
      ],
      chains,
      '10.88.0.0/16',
    );
    const dnat = text.split('\n').filter((line) => line.includes('DNAT --to'));
    assert.deepEqual(dnat, [
      '-A VEK-SERVICES -d 10.88.0.1/32 -p udp -m udp --dport 31000 -m comment --comment "ns/relay:udp node-port" -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.88.0.5:3478',
      '-A VEK-SERVICES -d 10.88.0.1/32 -p udp -m udp --dport 31000 -m comment --comment "ns/relay:udp node-port" -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.88.0.6:3478',
      '-A VEK-SERVICES -d 10.88.0.1/32 -p udp -m udp --dport 31000 -m comment --comment "ns/relay:udp node-port" -j DNAT --to-destination 10.88.0.7:3478',
    ]);
    assert.match(text, /^\*nat\n:VEK-SERVICES - \[0:0\]\n:VEK-POSTROUTING - \[0:0\]\n-F VEK-SERVICES\n/);
    assert.match(
      text,
      /-A VEK-POSTROUTING -s 10\.88\.0\.0\/16 -d 10\.88\.0\.0\/16 -m conntrack --ctstate DNAT -j MASQUERADE\nCOMMIT\n\*filter\n/,
    );
    assert.ok(text.endsWith('COMMIT\n'));
  });
});

describe('staleUdpEntries', () => {
  const fe = (port: number, endpoints: string[], protocol: 'udp' | 'tcp' = 'udp') => ({
    comment: `p${port}`,
    protocol,
    ip: nodeIP,
    port,
    endpoints,
  });

  test('first endpoint: every entry of the frontend; removed endpoint: its entries; TCP: none', () => {
    assert.deepEqual(staleUdpEntries([fe(1, [])], [fe(1, ['10.88.0.5:9'])]), [
      { protocol: 'udp', origDst: nodeIP, origPortDst: 1 },
    ]);
    assert.deepEqual(staleUdpEntries([], [fe(1, ['10.88.0.5:9'])]), [
      { protocol: 'udp', origDst: nodeIP, origPortDst: 1 },
    ]);
    assert.deepEqual(staleUdpEntries([fe(1, ['10.88.0.5:9', '10.88.0.6:9'])], [fe(1, ['10.88.0.6:9'])]), [
      { protocol: 'udp', origDst: nodeIP, origPortDst: 1, replySrc: '10.88.0.5' },
    ]);
    assert.deepEqual(staleUdpEntries([fe(1, ['10.88.0.5:9'])], []), [
      { protocol: 'udp', origDst: nodeIP, origPortDst: 1, replySrc: '10.88.0.5' },
    ]);
    assert.deepEqual(staleUdpEntries([fe(1, ['10.88.0.5:9'], 'tcp')], [fe(1, [], 'tcp')]), []);
    assert.deepEqual(staleUdpEntries([fe(1, ['10.88.0.5:9'])], [fe(1, ['10.88.0.5:9', '10.88.0.6:9'])]), []);
  });
});
