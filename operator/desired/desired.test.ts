// The desired objects against the contract every part of the Kubernetes work shares: names,
// labels, owner references and the environment each component is configured by.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1EnvVar, V1Pod, V1Service } from '@kubernetes/client-node';
import { applyEnvOverrides } from '../../config/env-overrides.ts';
import { TransceiverConfigSchema } from '../../transceiver/config.ts';
import { cluster, pool } from '../test-support/fixtures.ts';
import {
  desiredClusterObjects,
  relayDeployment,
  relayService,
  signalingDeployment,
} from './cluster-objects.ts';
import { ledgerConfigMap, routingConfigMap } from './configmaps.ts';
import { templateHash, transceiverPod } from './transceiver-pod.ts';

const envOf = (list: V1EnvVar[] | undefined) =>
  Object.fromEntries((list ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('cluster objects', () => {
  const edge = cluster({
    relay: { publicAddresses: ['203.0.113.7:3478'] },
    redis: { url: 'redis://r:6379/0' },
  });
  const input = {
    cluster: edge,
    defaultImage: 'ghcr.io/voice-edge/voice-edge:test',
    relayAddresses: ['203.0.113.7:3478'],
  };

  it('names, labels and owns every object', () => {
    const objects = desiredClusterObjects(input);
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ServiceAccount/edge-routing-reader',
        'Role/edge-routing-reader',
        'RoleBinding/edge-routing-reader',
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
      VOICE_EDGE_RELAY_HTTP__HOST: '0.0.0.0',
      VOICE_EDGE_RELAY_HTTP__PORT: '9090',
      VOICE_EDGE_RELAY_REDIS__URL: '"redis://r:6379/0"',
      VOICE_EDGE_ROUTING_KEYS: { secretKeyRef: { name: 'keys', key: 'keys.yaml' } },
    });
    assert.equal(deployment.spec!.template.spec!.serviceAccountName, 'edge-routing-reader');
    assert.equal(deployment.spec!.template.spec!.enableServiceLinks, false);
    assert.deepEqual(container.readinessProbe!.httpGet, { path: '/readyz', port: 'http' });
    assert.equal(deployment.spec!.replicas, 2);
  });

  it('exposes the relay on UDP with externalTrafficPolicy Local', () => {
    const service = relayService({
      ...input,
      cluster: cluster({ relay: { serviceType: 'NodePort', nodePort: 31478, port: 3479 } }),
    }) as V1Service;
    assert.equal(service.spec!.type, 'NodePort');
    assert.equal(service.spec!.externalTrafficPolicy, 'Local');
    assert.deepEqual(service.spec!.ports, [
      { name: 'relay', protocol: 'UDP', port: 3479, targetPort: 3479, nodePort: 31478 },
    ]);
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
    assert.equal(variables.VOICE_EDGE_SIGNALING_HTTP__PORT, '8443');
    assert.equal(variables.VOICE_EDGE_SIGNALING_OPS__PORT, '9091');
    assert.deepEqual(variables.VOICE_EDGE_SIGNALING_AUTH__TOKENS, {
      secretKeyRef: { name: 'whip-tokens', key: 'tokens' },
    });
    assert.deepEqual(container.readinessProbe!.httpGet, { path: '/readyz', port: 'ops' });
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
    // Resolve what the kubelet resolves, then read it the way the transceiver does.
    const resolved: Record<string, string> = {};
    for (const variable of container.env!) {
      if (variable.value !== undefined)
        resolved[variable.name] = variable.value.replace('$(POD_IP)', '10.88.0.9');
    }
    const raw = applyEnvOverrides({}, resolved, 'VOICE_EDGE_TRANSCEIVER_');
    const config = TransceiverConfigSchema.parse(raw);
    assert.equal(config.clusterId, 7);
    assert.equal(config.transceiverId, 42);
    assert.equal(config.tunnel.listen.address, '10.88.0.9');
    assert.equal(config.tunnel.listen.port, 7000);
    assert.equal(config.api.host, '0.0.0.0');
    assert.equal(config.api.port, 8090);
    assert.equal(config.backend.url, 'ws://echo.voice:9000/s?x=1#f');
    assert.equal(config.backend.sampleRate, 16000);
    assert.equal(config.sessions.max, 40);
    assert.equal(config.relays.length, 1);
  });

  it('changes its template hash with the template and not with the ID', () => {
    const other = { ...input, pool: pool({ backend: { url: 'ws://other:1' } }) };
    assert.notEqual(templateHash(input), templateHash(other));
    const a = (transceiverPod(input, 1) as V1Pod).metadata!.annotations!['voice-edge.io/template-hash'];
    const b = (transceiverPod(input, 2) as V1Pod).metadata!.annotations!['voice-edge.io/template-hash'];
    assert.equal(a, b);
  });
});
