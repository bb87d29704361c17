// The cluster's IP families (spec.ipFamilies) in the objects the operator makes: what each pod binds,
// read back through the component's own configuration schema, and the Services' families. Pod IPs
// of both families, as the kubelet expands $(POD_IP) into the transceiver's environment.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1EnvVar, V1Pod, V1Service } from '@kubernetes/client-node';
import { applyEnvOverrides } from '../../config/env-overrides.ts';
import { formatTransportAddress } from '../../protocol/address.ts';
import { RelayConfigSchema } from '../../relay/config.ts';
import { SignalingConfigSchema } from '../../signaling/config.ts';
import { TransceiverConfigSchema } from '../../transceiver/config.ts';
import { apiBaseUrl, tunnelAddress } from '../observed-transceiver-pod.ts';
import { cluster, pool } from '../test-support/fixtures.ts';
import { relayDeployment, relayService, signalingDeployment, signalingService } from './cluster-objects.ts';
import { hostEnvValue, httpHost, relayListen, relayTunnelBindV6, serviceIpFamilies } from './ip-families.ts';
import { transceiverPod } from './transceiver-pod.ts';

/** A container's environment as the kubelet resolves it: $(POD_IP) expanded, Secrets read. */
function resolvedEnv(variables: V1EnvVar[] | undefined, podIP: string): Record<string, string> {
  const resolved: Record<string, string> = { POD_IP: podIP, POD_NAMESPACE: 'voice' };
  for (const variable of variables ?? []) {
    if (variable.value !== undefined) resolved[variable.name] = variable.value.replaceAll('$(POD_IP)', podIP);
    else if (variable.valueFrom?.secretKeyRef?.key === 'tokens') resolved[variable.name] = 'token-a';
  }
  return resolved;
}

const containerOf = (object: V1Deployment | V1Pod) =>
  ('template' in (object.spec ?? {})
    ? (object as V1Deployment).spec!.template.spec!
    : (object as V1Pod).spec!
  ).containers[0]!;

const input = (spec: Record<string, unknown>) => ({
  cluster: cluster(spec),
  defaultImage: 'img:1',
  relayAddresses: ['203.0.113.7:3478', '[2001:db8::7]:3478'],
  apiTokensHash: '0123456789abcdef',
  operator: { namespace: 'voice-edge-system', podLabels: { app: 'operator' } },
});

const IPV4 = input({});
const IPV6 = input({ ipFamilies: ['IPv6'] });
const DUAL = input({ ipFamilies: ['IPv4', 'IPv6'], relay: { port: 3479 } });

describe('spec.ipFamilies', () => {
  it('is IPv4, IPv6 or both, each once', () => {
    assert.equal(cluster().spec.ipFamilies, undefined);
    assert.deepEqual(cluster({ ipFamilies: ['IPv6', 'IPv4'] }).spec.ipFamilies, ['IPv6', 'IPv4']);
    assert.throws(() => cluster({ ipFamilies: [] }));
    assert.throws(() => cluster({ ipFamilies: ['IPv6', 'IPv6'] }), /must not repeat a family/);
    assert.throws(() => cluster({ ipFamilies: ['IPv5'] }));
  });

  it('names the wildcards every pod binds', () => {
    assert.equal(httpHost(IPV4.cluster), '0.0.0.0');
    assert.equal(httpHost(IPV6.cluster), '::');
    assert.equal(httpHost(DUAL.cluster), '::', 'Node serves IPv4 on a :: TCP socket too');
    assert.deepEqual(relayListen(IPV4.cluster), ['0.0.0.0:3478']);
    assert.deepEqual(relayListen(IPV6.cluster), ['[::]:3478']);
    assert.deepEqual(relayListen(DUAL.cluster), ['0.0.0.0:3479', '[::]:3479']);
    assert.equal(relayTunnelBindV6(IPV4.cluster), undefined);
    assert.equal(relayTunnelBindV6(IPV6.cluster), '::');
    // `::` is a YAML mapping unquoted; IPv4 stays bare, as the operator wrote it before.
    assert.equal(hostEnvValue('::'), '"::"');
    assert.equal(hostEnvValue('0.0.0.0'), '0.0.0.0');
  });

  it('IPv4 (unset): the objects are what they were before the field existed', () => {
    const relay = containerOf(relayDeployment(IPV4) as V1Deployment).env!;
    const value = (name: string) => relay.find((variable) => variable.name === name)?.value;
    assert.equal(value('VOICE_EDGE_RELAY_LISTEN'), '["0.0.0.0:3478"]');
    assert.equal(value('VOICE_EDGE_RELAY_HTTP__HOST'), '0.0.0.0');
    assert.equal(value('VOICE_EDGE_RELAY_TUNNEL__BIND_V6'), undefined);
    const signaling = containerOf(signalingDeployment(IPV4) as V1Deployment).env!;
    assert.equal(signaling.find((v) => v.name === 'VOICE_EDGE_SIGNALING_HTTP__HOST')?.value, '0.0.0.0');
    for (const service of [relayService(IPV4), signalingService(IPV4)] as V1Service[]) {
      assert.equal(service.spec!.ipFamilies, undefined);
      assert.equal(service.spec!.ipFamilyPolicy, undefined);
    }
  });

  it('the relay listens in each family, tunnels over IPv6 and serves HTTP on ::, as its schema reads it', () => {
    for (const [objects, listen, bindV6] of [
      [IPV4, [{ family: 4, address: '0.0.0.0', port: 3478 }], undefined],
      [IPV6, [{ family: 6, address: '::', port: 3478 }], '::'],
      [
        DUAL,
        [
          { family: 4, address: '0.0.0.0', port: 3479 },
          { family: 6, address: '::', port: 3479 },
        ],
        '::',
      ],
    ] as const) {
      const env = resolvedEnv(containerOf(relayDeployment(objects) as V1Deployment).env, 'fd00:10:244::5');
      const config = RelayConfigSchema.parse(applyEnvOverrides({}, env, 'VOICE_EDGE_RELAY_'));
      assert.deepEqual(config.listen, listen);
      assert.deepEqual(config.tcp.listen, listen, 'ICE-TCP on the same addresses');
      assert.deepEqual(config.tunnel, { bindV4: '0.0.0.0', ...(bindV6 ? { bindV6 } : {}) });
      assert.equal(config.http.host, httpHost(objects.cluster));
    }
  });

  it('signaling serves WHIP and ops on :: with IPv6, as its schema reads it', () => {
    for (const objects of [IPV4, IPV6, DUAL]) {
      const env = resolvedEnv(containerOf(signalingDeployment(objects) as V1Deployment).env, '10.88.0.5');
      const config = SignalingConfigSchema.parse(applyEnvOverrides({}, env, 'VOICE_EDGE_SIGNALING_'));
      assert.equal(config.http.host, httpHost(objects.cluster));
      assert.equal(config.ops.host, httpHost(objects.cluster));
      // The relays it advertises, IPv6 ones in brackets (operator/relay-addresses.ts).
      assert.deepEqual(config.relays.map(formatTransportAddress), ['203.0.113.7:3478', '[2001:db8::7]:3478']);
      assert.deepEqual(config.tcpRelays.map(formatTransportAddress), [
        '203.0.113.7:443',
        '[2001:db8::7]:443',
      ]);
    }
  });

  it('gives the relay and signaling Services the families, dual-stack required for two', () => {
    for (const service of [relayService(IPV6), signalingService(IPV6)] as V1Service[]) {
      assert.deepEqual(service.spec!.ipFamilies, ['IPv6']);
      assert.equal(service.spec!.ipFamilyPolicy, 'SingleStack');
    }
    for (const service of [relayService(DUAL), signalingService(DUAL)] as V1Service[]) {
      assert.deepEqual(service.spec!.ipFamilies, ['IPv4', 'IPv6']);
      assert.equal(service.spec!.ipFamilyPolicy, 'RequireDualStack');
    }
    assert.deepEqual(serviceIpFamilies(cluster({ ipFamilies: ['IPv6', 'IPv4'] })), {
      ipFamilies: ['IPv6', 'IPv4'],
      ipFamilyPolicy: 'RequireDualStack',
    });
    // The relay Service keeps what it had besides.
    const relay = relayService(IPV6) as V1Service;
    assert.equal(relay.spec!.externalTrafficPolicy, 'Local');
    assert.deepEqual(relay.spec!.ports, [
      { name: 'relay', protocol: 'UDP', port: 3478, targetPort: 3478 },
      { name: 'relay-tcp', protocol: 'TCP', port: 443, targetPort: 3478 },
    ]);
  });

  it('a transceiver pod listens on its own IP, IPv4 or IPv6: the address the routing table names', () => {
    for (const [objects, podIP, family, apiHost] of [
      [IPV4, '10.88.0.9', 4, '0.0.0.0'],
      [IPV6, 'fd00:10:244::9', 6, '::'],
      [DUAL, '10.88.0.9', 4, '::'],
      [DUAL, 'fd00:10:244::9', 6, '::'],
    ] as const) {
      const pod = transceiverPod({ ...objects, pool: pool() }, 9) as V1Pod;
      const env = resolvedEnv(containerOf(pod).env, podIP);
      assert.equal(env.VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST, podIP, 'the pod IP, bare');
      assert.equal(env.VOICE_EDGE_TRANSCEIVER_TUNNEL__LISTEN, undefined);
      const config = TransceiverConfigSchema.parse(applyEnvOverrides({}, env, 'VOICE_EDGE_TRANSCEIVER_'));
      assert.deepEqual(config.tunnel.listen, { family, address: podIP, port: 7000 });
      assert.equal(formatTransportAddress(config.tunnel.listen), tunnelAddress(podIP));
      assert.equal(config.api.host, apiHost);
      assert.deepEqual(config.tcpRelays.map(formatTransportAddress), [
        '203.0.113.7:443',
        '[2001:db8::7]:443',
      ]);
      // The routing table's API URL reaches a server bound on that host.
      assert.equal(
        new URL(apiBaseUrl(podIP)).hostname,
        family === 6 ? `[${podIP}]` : podIP,
        'the API URL brackets an IPv6 pod IP',
      );
    }
  });
});
