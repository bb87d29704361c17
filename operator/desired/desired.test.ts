// The desired objects against the contract every part of the Kubernetes work shares: names,
// labels, owner references and the environment each component is configured by.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1EnvVar, V1Pod, V1Service } from '@kubernetes/client-node';
import { applyEnvOverrides } from '../../config/env-overrides.ts';
import { TransceiverConfigSchema } from '../../transceiver/config.ts';
import { relayTcpAddresses } from '../relay-addresses.ts';
import { cluster, pool } from '../test-support/fixtures.ts';
import {
  desiredClusterObjects,
  relayDeployment,
  relayService,
  signalingDeployment,
} from './cluster-objects.ts';
import { ledgerConfigMap, routingConfigMap } from './configmaps.ts';
import { type NetworkPolicyObject, transceiverNetworkPolicy } from './network-policy.ts';
import { newApiToken, readApiCredential, transceiverApiSecret } from './transceiver-api-secret.ts';
import { templateHash, transceiverPod } from './transceiver-pod.ts';

const operator = {
  namespace: 'voice-edge-system',
  podLabels: { 'app.kubernetes.io/name': 'voice-edge', 'app.kubernetes.io/component': 'operator' },
};

const envOf = (list: V1EnvVar[] | undefined) =>
  Object.fromEntries((list ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

/** A transceiver pod's configuration: what the kubelet resolves, read the way the transceiver does. */
function transceiverConfigOf(pod: V1Pod) {
  const resolved: Record<string, string> = {};
  for (const variable of pod.spec!.containers[0]!.env!) {
    if (variable.value !== undefined)
      resolved[variable.name] = variable.value.replace('$(POD_IP)', '10.88.0.9');
    else if (variable.valueFrom?.secretKeyRef?.name === 'edge-transceiver-api')
      resolved[variable.name] = 'new-token,old-token';
  }
  return TransceiverConfigSchema.parse(applyEnvOverrides({}, resolved, 'VOICE_EDGE_TRANSCEIVER_'));
}

describe('cluster objects', () => {
  const edge = cluster({
    relay: { publicAddresses: ['203.0.113.7:3478'] },
    redis: { url: 'redis://r:6379/0' },
  });
  const input = {
    cluster: edge,
    defaultImage: 'ghcr.io/voice-edge/voice-edge:test',
    relayAddresses: ['203.0.113.7:3478'],
    apiTokensHash: 'abcdef0123456789',
    operator,
  };

  it('names, labels and owns every object', () => {
    const objects = desiredClusterObjects(input);
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ServiceAccount/edge-routing-reader',
        'Role/edge-routing-reader',
        'RoleBinding/edge-routing-reader',
        'NetworkPolicy/edge-transceiver',
        'Service/edge-relay',
        'PodDisruptionBudget/edge-relay',
        'Deployment/edge-relay',
        'Service/edge-signaling',
        'Deployment/edge-signaling',
      ],
    );
    for (const object of objects) {
      assert.equal(object.metadata.namespace, 'voice');
      assert.equal(object.metadata.labels?.['app.kubernetes.io/instance'], 'edge');
      assert.equal(object.metadata.labels?.['app.kubernetes.io/name'], 'voice-edge');
      assert.deepEqual(object.metadata.ownerReferences, [
        {
          apiVersion: 'voice-edge.io/v1alpha1',
          kind: 'VoiceEdgeCluster',
          name: 'edge',
          uid: 'uid-cluster',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
  });

  it('configures the relay by environment, routing table from the ConfigMap', () => {
    const deployment = relayDeployment(input) as V1Deployment;
    const container = deployment.spec!.template.spec!.containers[0]!;
    assert.deepEqual(container.args, ['relay']);
    assert.equal(container.image, 'ghcr.io/voice-edge/voice-edge:test');
    assert.deepEqual(envOf(container.env), {
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME: 'edge-routing',
      VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAMESPACE: 'voice',
      VOICE_EDGE_RELAY_CLUSTER_ID: '7',
      VOICE_EDGE_RELAY_LISTEN: '["0.0.0.0:3478"]',
      VOICE_EDGE_RELAY_TCP__LISTEN: '["0.0.0.0:3478"]',
      VOICE_EDGE_RELAY_HTTP__HOST: '0.0.0.0',
      VOICE_EDGE_RELAY_HTTP__PORT: '9090',
      VOICE_EDGE_RELAY_REDIS__URL: '"redis://r:6379/0"',
      VOICE_EDGE_ROUTING_KEYS: { secretKeyRef: { name: 'keys', key: 'keys.yaml' } },
    });
    assert.equal(deployment.spec!.template.spec!.serviceAccountName, 'edge-routing-reader');
    assert.equal(deployment.spec!.template.spec!.enableServiceLinks, false);
    assert.deepEqual(container.readinessProbe!.httpGet, { path: '/readyz', port: 'http' });
    assert.equal(deployment.spec!.replicas, 2);
    // The pods carry managed-by (the operator watches them for relaySources); the immutable
    // selector does not.
    assert.equal(
      deployment.spec!.template.metadata!.labels!['app.kubernetes.io/managed-by'],
      'voice-edge-operator',
    );
    assert.equal(deployment.spec!.selector.matchLabels!['app.kubernetes.io/managed-by'], undefined);
    assert.deepEqual(
      { ...deployment.spec!.template.metadata!.labels, ...deployment.spec!.selector.matchLabels },
      deployment.spec!.template.metadata!.labels,
    );
  });

  it('exposes the relay on UDP and ICE-TCP, one address, with externalTrafficPolicy Local', () => {
    const service = relayService({
      ...input,
      cluster: cluster({
        relay: { serviceType: 'NodePort', nodePort: 31478, port: 3479, tcp: { nodePort: 31443 } },
      }),
    }) as V1Service;
    assert.equal(service.spec!.type, 'NodePort');
    assert.equal(service.spec!.externalTrafficPolicy, 'Local');
    assert.deepEqual(service.spec!.ports, [
      { name: 'relay', protocol: 'UDP', port: 3479, targetPort: 3479, nodePort: 31478 },
      // The pods listen for TCP on the relay port too: no capability to bind 443.
      { name: 'relay-tcp', protocol: 'TCP', port: 443, targetPort: 3479, nodePort: 31443 },
    ]);
  });

  it('ICE-TCP off: no TCP port on the Service or the pods, no TCP listen, nothing advertised', () => {
    const off = { ...input, cluster: cluster({ relay: { tcp: { enabled: false } } }) };
    assert.deepEqual(
      (relayService(off) as V1Service).spec!.ports!.map((p) => p.protocol),
      ['UDP'],
    );
    const relay = (relayDeployment(off) as V1Deployment).spec!.template.spec!.containers[0]!;
    assert.equal(envOf(relay.env).VOICE_EDGE_RELAY_TCP__LISTEN, undefined);
    assert.deepEqual(
      relay.ports!.map((p) => p.name),
      ['relay', 'http'],
    );
    const signaling = (signalingDeployment(off) as V1Deployment).spec!.template.spec!.containers[0]!;
    assert.equal(envOf(signaling.env).VOICE_EDGE_SIGNALING_TCP_RELAYS, undefined);
  });

  it('the ICE-TCP addresses: the relay IPs with the TCP port (its fixed node port under NodePort)', () => {
    const addresses = ['203.0.113.7:3478', '[2001:db8::7]:3478'];
    assert.deepEqual(relayTcpAddresses(cluster({}), addresses), ['203.0.113.7:443', '[2001:db8::7]:443']);
    assert.deepEqual(relayTcpAddresses(cluster({ relay: { tcp: { port: 8443 } } }), addresses.slice(0, 1)), [
      '203.0.113.7:8443',
    ]);
    const nodePort = { serviceType: 'NodePort', nodePort: 31478 };
    assert.deepEqual(
      relayTcpAddresses(cluster({ relay: { ...nodePort, tcp: { nodePort: 31443 } } }), addresses.slice(0, 1)),
      ['203.0.113.7:31443'],
    );
    assert.deepEqual(relayTcpAddresses(cluster({ relay: nodePort }), addresses), [], 'no fixed node port');
    assert.deepEqual(relayTcpAddresses(cluster({ relay: { tcp: { enabled: false } } }), addresses), []);
  });

  it('configures signaling with the relays and the auth tokens Secret', () => {
    const withAuth = {
      ...input,
      cluster: cluster({ signaling: { authSecretName: 'whip-tokens', port: 8443 } }),
    };
    const container = (signalingDeployment(withAuth) as V1Deployment).spec!.template.spec!.containers[0]!;
    assert.deepEqual(container.args, ['signaling']);
    const variables = envOf(container.env);
    assert.equal(variables.VOICE_EDGE_SIGNALING_RELAYS, '["203.0.113.7:3478"]');
    assert.equal(variables.VOICE_EDGE_SIGNALING_TCP_RELAYS, '["203.0.113.7:443"]');
    assert.equal(variables.VOICE_EDGE_SIGNALING_HTTP__PORT, '8443');
    assert.equal(variables.VOICE_EDGE_SIGNALING_OPS__PORT, '9091');
    assert.deepEqual(variables.VOICE_EDGE_SIGNALING_AUTH__TOKENS, {
      secretKeyRef: { name: 'whip-tokens', key: 'tokens' },
    });
    assert.deepEqual(container.readinessProbe!.httpGet, { path: '/readyz', port: 'ops' });
  });

  it("gives signaling the transceivers' API tokens, and rolls it when they change", () => {
    const deployment = signalingDeployment(input) as V1Deployment;
    const variables = envOf(deployment.spec!.template.spec!.containers[0]!.env);
    assert.deepEqual(variables.VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS, {
      secretKeyRef: { name: 'edge-transceiver-api', key: 'tokens' },
    });
    assert.deepEqual(deployment.spec!.template.metadata!.annotations, {
      'voice-edge.io/transceiver-api-tokens-hash': 'abcdef0123456789',
    });
    const named = signalingDeployment({
      ...input,
      cluster: cluster({ transceiverApi: { secretName: 'my-api-tokens' } }),
      apiTokensHash: undefined,
    }) as V1Deployment;
    assert.deepEqual(
      envOf(named.spec!.template.spec!.containers[0]!.env).VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS,
      { secretKeyRef: { name: 'my-api-tokens', key: 'tokens' } },
    );
    assert.equal(named.spec!.template.metadata!.annotations, undefined);
    // While the credential is unusable the signaling Deployment in place is left alone.
    assert.deepEqual(
      desiredClusterObjects({ ...input, apiTokensHash: undefined })
        .filter((o) => o.kind === 'Deployment')
        .map((o) => o.metadata.name),
      ['edge-relay'],
    );
  });

  it('lets only relays reach the tunnel port and only signaling and the operator the API port', () => {
    const policy = desiredClusterObjects(input).find(
      (o) => o.kind === 'NetworkPolicy',
    ) as unknown as NetworkPolicyObject;
    assert.equal(policy.apiVersion, 'networking.k8s.io/v1');
    assert.deepEqual(policy.spec, {
      podSelector: {
        matchLabels: {
          'app.kubernetes.io/name': 'voice-edge',
          'app.kubernetes.io/instance': 'edge',
          'app.kubernetes.io/component': 'transceiver',
        },
      },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              podSelector: {
                matchLabels: {
                  'app.kubernetes.io/name': 'voice-edge',
                  'app.kubernetes.io/instance': 'edge',
                  'app.kubernetes.io/component': 'relay',
                },
              },
            },
          ],
          ports: [{ protocol: 'UDP', port: 7000 }],
        },
        {
          from: [
            {
              podSelector: {
                matchLabels: {
                  'app.kubernetes.io/name': 'voice-edge',
                  'app.kubernetes.io/instance': 'edge',
                  'app.kubernetes.io/component': 'signaling',
                },
              },
            },
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'voice-edge-system' } },
              podSelector: {
                matchLabels: {
                  'app.kubernetes.io/name': 'voice-edge',
                  'app.kubernetes.io/component': 'operator',
                },
              },
            },
          ],
          ports: [{ protocol: 'TCP', port: 8090 }],
        },
      ],
    });
    // The relay, signaling and transceiver pods carry the labels the policy selects them by.
    const relayLabels = (relayDeployment(input) as V1Deployment).spec!.template.metadata!.labels!;
    const signalingLabels = (signalingDeployment(input) as V1Deployment).spec!.template.metadata!.labels!;
    const podLabels = transceiverPod({ ...input, pool: pool(), apiTokensHash: 'h' }, 1).metadata!.labels!;
    const [tunnelRule, apiRule] = policy.spec.ingress;
    for (const [labels, selector] of [
      [relayLabels, tunnelRule!.from[0]!.podSelector!],
      [signalingLabels, apiRule!.from[0]!.podSelector!],
      [podLabels, policy.spec.podSelector],
    ] as const) {
      for (const [key, value] of Object.entries(selector.matchLabels!)) assert.equal(labels[key], value);
    }
  });

  it('admits the metricsFrom peers to the API port, the operator from any namespace when its own is unknown, and is left out when disabled', () => {
    const prometheus = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    };
    const policy = transceiverNetworkPolicy(cluster({ networkPolicy: { metricsFrom: [prometheus] } }), {
      ...operator,
      namespace: undefined,
    });
    assert.equal(policy.spec.ingress.length, 3);
    assert.deepEqual(policy.spec.ingress[2], {
      from: [prometheus],
      ports: [{ protocol: 'TCP', port: 8090 }],
    });
    assert.deepEqual(policy.spec.ingress[1]!.from[1]!.namespaceSelector, {});
    const disabled = desiredClusterObjects({
      ...input,
      cluster: cluster({ networkPolicy: { enabled: false } }),
    });
    assert.ok(!disabled.some((o) => o.kind === 'NetworkPolicy'));
    assert.throws(
      () => cluster({ networkPolicy: { metricsFrom: [{}] } }),
      /namespaceSelector or podSelector/,
    );
  });

  it('lets the routing reader read only the routing table', () => {
    const role = desiredClusterObjects(input)[1] as unknown as { rules: unknown };
    assert.deepEqual(role.rules, [
      {
        apiGroups: [''],
        resources: ['configmaps'],
        resourceNames: ['edge-routing'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
  });

  it('publishes the routing table and the ledger as owned ConfigMaps', () => {
    const table = routingConfigMap(edge, { clusterId: 7, generation: 3 }, '55');
    assert.equal(table.metadata.name, 'edge-routing');
    assert.equal(table.metadata.resourceVersion, '55');
    assert.equal(table.metadata.labels?.['app.kubernetes.io/component'], 'routing-table');
    assert.deepEqual(JSON.parse(table.data!['routing.json']!), { clusterId: 7, generation: 3 });
    assert.equal(routingConfigMap(edge, {}, undefined).metadata.resourceVersion, undefined);
    const ledger = ledgerConfigMap(edge, 12);
    assert.equal(ledger.metadata.name, 'edge-transceiver-ids');
    assert.deepEqual(ledger.data, { next: '12' });
  });
});

describe('transceiver pod', () => {
  const input = {
    cluster: cluster(),
    pool: pool({
      capacityPerPod: 40,
      backend: { url: 'ws://echo.voice:9000/s?x=1#f', sampleRate: 16000 },
      audio: { opusApplication: 'voip', opusComplexity: 3 },
      template: {
        env: [
          { name: 'EXTRA', value: 'yes' },
          { name: 'VOICE_EDGE_TRANSCEIVER_TRANSCEIVER_ID', value: '666' },
        ],
        labels: { team: 'voice', 'voice-edge.io/pool': 'hijack' },
        nodeSelector: { pool: 'media' },
      },
    }),
    defaultImage: 'img:1',
    relayAddresses: ['203.0.113.7:3478'],
    apiTokensHash: '0123456789abcdef',
  };

  it('is named after pool and ID, labelled, owned by the pool', () => {
    const pod = transceiverPod(input, 42) as V1Pod;
    assert.equal(pod.metadata!.name, 'echo-42');
    assert.deepEqual(pod.metadata!.labels, {
      team: 'voice',
      'app.kubernetes.io/name': 'voice-edge',
      'app.kubernetes.io/instance': 'edge',
      'app.kubernetes.io/component': 'transceiver',
      'app.kubernetes.io/managed-by': 'voice-edge-operator',
      'voice-edge.io/pool': 'echo',
      'voice-edge.io/transceiver-id': '42',
    });
    assert.equal(pod.metadata!.ownerReferences![0]!.kind, 'TransceiverPool');
    assert.equal(pod.metadata!.ownerReferences![0]!.uid, 'uid-pool');
    assert.equal(pod.spec!.restartPolicy, 'Always');
    assert.deepEqual(pod.spec!.nodeSelector, { pool: 'media' });
    assert.equal(pod.metadata!.annotations!['voice-edge.io/template-hash'], templateHash(input));
    assert.equal(pod.metadata!.annotations!['voice-edge.io/transceiver-api-tokens-hash'], '0123456789abcdef');
  });

  it("reads the routing table with the routing reader's token, and gets the API tokens from the Secret", () => {
    const pod = transceiverPod(input, 42) as V1Pod;
    assert.equal(pod.spec!.serviceAccountName, 'edge-routing-reader');
    assert.equal(pod.spec!.automountServiceAccountToken, true);
    const variables = envOf(pod.spec!.containers[0]!.env);
    assert.deepEqual(variables.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
    assert.equal(variables.VOICE_EDGE_TRANSCEIVER_ROUTING_TABLE__CONFIG_MAP__NAME, 'edge-routing');
    assert.equal(variables.VOICE_EDGE_TRANSCEIVER_ROUTING_TABLE__CONFIG_MAP__NAMESPACE, 'voice');
    assert.deepEqual(variables.VOICE_EDGE_TRANSCEIVER_API__TOKENS, {
      secretKeyRef: { name: 'edge-transceiver-api', key: 'tokens' },
    });
  });

  it('tells the transceiver its ID and configuration in variables its own schema accepts', () => {
    const container = (transceiverPod(input, 42) as V1Pod).spec!.containers[0]!;
    assert.deepEqual(container.args, ['transceiver']);
    const variables = envOf(container.env);
    assert.equal(
      variables.VOICE_EDGE_TRANSCEIVER_TRANSCEIVER_ID,
      '42',
      'the template cannot override the ID',
    );
    assert.equal(variables.EXTRA, 'yes');
    assert.deepEqual(variables.VOICE_EDGE_ROUTING_KEYS, { secretKeyRef: { name: 'keys', key: 'keys.yaml' } });
    assert.equal(variables.VOICE_EDGE_TRANSCEIVER_BACKEND__PROTOCOL, 'voice-edge');
    assert.equal(
      variables.VOICE_EDGE_TRANSCEIVER_BACKEND__ACCOUNT_SID,
      undefined,
      'only when the pool sets one',
    );
    const config = transceiverConfigOf(transceiverPod(input, 42) as V1Pod);
    assert.equal(config.clusterId, 7);
    assert.equal(config.transceiverId, 42);
    assert.equal(config.tunnel.listen.address, '10.88.0.9');
    assert.equal(config.tunnel.listen.port, 7000);
    assert.equal(config.api.host, '0.0.0.0');
    assert.equal(config.api.port, 8090);
    assert.equal(config.backend.url, 'ws://echo.voice:9000/s?x=1#f');
    assert.equal(config.backend.protocol, 'voice-edge');
    assert.equal(config.backend.sampleRate, 16000);
    assert.equal(config.sessions.max, 40);
    assert.equal(config.audio.opusApplication, 'voip');
    assert.equal(config.audio.opusComplexity, 3);
    assert.equal(config.relays.length, 1);
    assert.deepEqual(config.routingTable, { configMap: { name: 'edge-routing', namespace: 'voice' } });
    assert.deepEqual(config.api.tokens, ['new-token', 'old-token']);
  });

  it('tells a twilio-media-streams transceiver its protocol, 8000 Hz and the accountSid', () => {
    const accountSid = `AC${'0123456789abcdef'.repeat(2)}`;
    for (const [backend, expectedSid] of [
      [{ url: 'wss://bot.voice/ws', protocol: 'twilio-media-streams', accountSid }, accountSid],
      // sampleRate 8000 may be written; the default accountSid is the transceiver's.
      [
        { url: 'wss://bot.voice/ws', protocol: 'twilio-media-streams', sampleRate: 8000 },
        `AC${'0'.repeat(32)}`,
      ],
    ] as const) {
      const pod = transceiverPod({ ...input, pool: pool({ backend }) }, 5) as V1Pod;
      const variables = envOf(pod.spec!.containers[0]!.env);
      assert.equal(variables.VOICE_EDGE_TRANSCEIVER_BACKEND__PROTOCOL, 'twilio-media-streams');
      assert.equal(variables.VOICE_EDGE_TRANSCEIVER_BACKEND__SAMPLE_RATE, '8000');
      const config = transceiverConfigOf(pod);
      assert.equal(config.backend.protocol, 'twilio-media-streams');
      assert.equal(config.backend.sampleRate, 8000);
      assert.equal(config.backend.accountSid, expectedSid);
      assert.equal(config.backend.url, 'wss://bot.voice/ws');
    }
    assert.notEqual(
      templateHash(input),
      templateHash({
        ...input,
        pool: pool({ backend: { url: 'ws://echo.voice:9000/s?x=1#f', protocol: 'twilio-media-streams' } }),
      }),
      'a changed protocol replaces the pods',
    );
  });

  it('changes its template hash with the template and not with the ID', () => {
    const other = { ...input, pool: pool({ backend: { url: 'ws://other:1' } }) };
    assert.notEqual(templateHash(input), templateHash(other));
    // A rotated credential replaces the pods (by draining), as a changed template does.
    assert.notEqual(templateHash(input), templateHash({ ...input, apiTokensHash: 'fedcba9876543210' }));
    const a = (transceiverPod(input, 1) as V1Pod).metadata!.annotations!['voice-edge.io/template-hash'];
    const b = (transceiverPod(input, 2) as V1Pod).metadata!.annotations!['voice-edge.io/template-hash'];
    assert.equal(a, b);
  });
});

describe('internal-API credential', () => {
  it('is created as an owned Secret holding one random token68 token', () => {
    const token = newApiToken();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url');
    assert.notEqual(newApiToken(), token);
    const secret = transceiverApiSecret(cluster(), token);
    assert.equal(secret.metadata.name, 'edge-transceiver-api');
    assert.equal(secret.metadata.namespace, 'voice');
    assert.equal(secret.metadata.ownerReferences![0]!.kind, 'VoiceEdgeCluster');
    assert.equal(secret.metadata.labels!['app.kubernetes.io/component'], 'transceiver-api');
    assert.equal(Buffer.from(secret.data!.tokens!, 'base64').toString(), token);
    assert.equal(
      transceiverApiSecret(cluster({ transceiverApi: { secretName: 'mine' } }), token).metadata.name,
      'mine',
    );
    const read = readApiCredential(secret);
    assert.ok(read.ok);
    assert.equal(read.token, token);
  });

  it('reads comma-separated tokens, the first is the one to send; the hash follows the list', () => {
    const secret = (text: string) => ({
      metadata: { name: 's' },
      data: { tokens: Buffer.from(text).toString('base64') },
    });
    const both = readApiCredential(secret(' old-token , new+token/== ,'));
    assert.ok(both.ok);
    assert.deepEqual(both.tokens, ['old-token', 'new+token/==']);
    assert.equal(both.token, 'old-token');
    const swapped = readApiCredential(secret('new+token/==,old-token'));
    assert.ok(swapped.ok);
    assert.equal(swapped.token, 'new+token/==');
    assert.notEqual(swapped.hash, both.hash);
    const same = readApiCredential(secret('old-token,new+token/=='));
    assert.ok(same.ok);
    assert.equal(same.hash, both.hash, 'spaces and empty items do not roll pods');
  });

  it('refuses a Secret without tokens or with one that cannot be a bearer token, saying which', () => {
    const check = (secret: unknown, message: RegExp) => {
      const read = readApiCredential(secret);
      assert.ok(!read.ok);
      assert.match(read.error, message);
    };
    check({ metadata: { name: 's' }, data: {} }, /Secret s has no key "tokens"/);
    check(
      { metadata: { name: 's' }, data: { tokens: Buffer.from(' , ').toString('base64') } },
      /holds no token/,
    );
    check(
      { metadata: { name: 's' }, data: { tokens: Buffer.from('good,bad token').toString('base64') } },
      /token 2 of "tokens" is not a bearer token/,
    );
  });
});
