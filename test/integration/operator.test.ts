// The operator against a real kube-apiserver (test/kube/control-plane.ts, no kubelet, no
// controller-manager): CRDs from crds/, resources applied with kubectl, the operator in process or
// as child processes that get SIGKILLed. Pod IPs and readiness are written by PodStatusSimulator,
// Deployment availability by the test; nothing answers a transceiver's /status here, so a drain
// ends by its timeout (the real transceivers are the e2e suite's).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import pino from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import { LeaderElector } from '../../kube/leader-election.ts';
import { resourcePath } from '../../kube/resources.ts';
import { loadOperatorConfig } from '../../operator/config.ts';
import { readApiCredential } from '../../operator/desired/transceiver-api-secret.ts';
import { type RunningOperator, startOperator } from '../../operator/operator.ts';
import { RESOURCES } from '../../operator/resources.ts';
import { type ControlPlane, startControlPlane } from '../kube/control-plane.ts';
import {
  ARTIFACTS,
  adminClient,
  OPERATOR_RBAC_RULES,
  OperatorProcess,
  PodStatusSimulator,
} from '../support/operator-harness.ts';
import { waitUntil } from '../support/wait.ts';

const CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));
const NS = 'inproc';

interface Obj {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
    managedFields?: { manager?: string; operation?: string; subresource?: string }[];
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
}

let cp: ControlPlane;
let client: KubeClient;
/** A kubeconfig with exactly OPERATOR_RBAC_RULES: every operator in these tests runs with it. */
let operatorKubeconfig: string;

async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await cp.kubectl(args, input === undefined ? undefined : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function namespace(name: string): Promise<void> {
  await kubectl(['create', 'namespace', name]);
  // No controller-manager: the ServiceAccount controller would create `default`, which pods need.
  await kubectl(['-n', name, 'create', 'serviceaccount', 'default']);
}

function clusterYaml(ns: string, name: string, extra = '') {
  return `
apiVersion: voice-edge.io/v1alpha1
kind: VoiceEdgeCluster
metadata: { name: ${name}, namespace: ${ns} }
spec:
  clusterId: 7
  routingKeys: { secretName: keys }
  relay: { replicas: 0, publicAddresses: ["203.0.113.7:3478"] }
  signaling: { replicas: 0 }
${extra}`;
}

function poolYaml(ns: string, name: string, cluster: string, replicas: number, extra = '') {
  return `
apiVersion: voice-edge.io/v1alpha1
kind: TransceiverPool
metadata: { name: ${name}, namespace: ${ns} }
spec:
  clusterName: ${cluster}
  replicas: ${replicas}
  drainTimeoutSeconds: 2
  backend: { url: "ws://echo:9000/" }
${extra}`;
}

const get = <T = Obj>(resource: (typeof RESOURCES)[keyof typeof RESOURCES], ns: string, name: string) =>
  client.get<T>(resourcePath(resource, ns, name));

async function tryGet(resource: (typeof RESOURCES)[keyof typeof RESOURCES], ns: string, name: string) {
  try {
    return await get(resource, ns, name);
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}

async function podsOf(ns: string, pool?: string): Promise<Obj[]> {
  const list = await client.get<{ items: Obj[] }>(resourcePath(RESOURCES.pod, ns), {
    query: pool === undefined ? {} : { labelSelector: `voice-edge.io/pool=${pool}` },
  });
  return list.items;
}

const idOf = (pod: Obj) => Number(pod.metadata.labels?.['voice-edge.io/transceiver-id']);

interface Table {
  generation: number;
  relaySources?: string[];
  transceivers: { id: number; tunnel: string; api: string; state: string; drainingSince?: number }[];
}

async function routingTable(ns: string, cluster: string): Promise<Table | undefined> {
  const map = await tryGet(RESOURCES.configMap, ns, `${cluster}-routing`);
  return map?.data?.['routing.json'] ? (JSON.parse(map.data['routing.json']) as Table) : undefined;
}

function condition(object: Obj | undefined, type: string) {
  const conditions = (object?.status?.conditions ?? []) as {
    type: string;
    status: string;
    reason: string;
    observedGeneration?: number;
    lastTransitionTime: string;
  }[];
  return conditions.find((c) => c.type === type);
}

/** The object's status describes its current generation and the condition has that status. */
async function waitForCondition(
  resource: (typeof RESOURCES)[keyof typeof RESOURCES],
  ns: string,
  name: string,
  type: string,
  status: string,
  timeoutMs = 10_000,
) {
  await waitUntil(
    async () => {
      const object = await tryGet(resource, ns, name);
      const c = condition(object, type);
      return (
        object !== undefined &&
        c?.status === status &&
        c.observedGeneration === object.metadata.generation &&
        object.status?.observedGeneration === object.metadata.generation
      );
    },
    timeoutMs,
    `${name}: ${type}=${status} for its current generation`,
  );
}

const operatorEnv = (ns: string, extra: Record<string, string> = {}): Record<string, string> => ({
  VOICE_EDGE_OPERATOR_WATCH_NAMESPACE: ns,
  VOICE_EDGE_OPERATOR_LEADER_ELECTION__NAMESPACE: ns,
  VOICE_EDGE_OPERATOR_STATUS__INTERVAL_MS: '500',
  VOICE_EDGE_OPERATOR_RETRY__INITIAL_MS: '100',
  VOICE_EDGE_OPERATOR_RETRY__MAX_MS: '1000',
  VOICE_EDGE_OPERATOR_WATCH__BACKOFF_INITIAL_MS: '100',
  VOICE_EDGE_OPERATOR_WATCH__BACKOFF_MAX_MS: '1000',
  VOICE_EDGE_OPERATOR_IMAGE: 'ghcr.io/voice-edge/voice-edge:test',
  ...extra,
});

describe('operator against a real API server', { timeout: 300_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ components: [] });
    client = adminClient(cp.kubeConfig());
    await kubectl(['apply', '--server-side', '-f', CRDS]);
    await kubectl([
      'wait',
      '--for=condition=Established',
      'crd/voiceedgeclusters.voice-edge.io',
      'crd/transceiverpools.voice-edge.io',
    ]);
    const user = 'voice-edge-operator';
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRole',
            metadata: { name: user },
            rules: OPERATOR_RBAC_RULES,
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'ClusterRoleBinding',
            metadata: { name: user },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: user },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
          },
        ],
      }),
    );
    operatorKubeconfig = (await cp.issueCredentials({ name: 'operator', user })).kubeconfigPath;
  });

  after(async () => {
    client?.close();
    await cp?.stop();
  });

  describe('in process', () => {
    let operator: RunningOperator;
    let simulator: PodStatusSimulator;

    before(async () => {
      await namespace(NS);
      mkdirSync(ARTIFACTS, { recursive: true });
      const config = loadOperatorConfig(undefined, {
        ...operatorEnv(NS),
        VOICE_EDGE_OPERATOR_HTTP__HOST: '127.0.0.1',
        VOICE_EDGE_OPERATOR_HTTP__PORT: '0',
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__LEASE_DURATION_SECONDS: '4',
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__RENEW_DEADLINE_MS: '3000',
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__RETRY_PERIOD_MS: '300',
      });
      const logger = pino(
        { level: 'debug' },
        pino.destination({ dest: join(ARTIFACTS, 'in-process.log'), sync: true }),
      );
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(operatorKubeconfig);
      operator = await startOperator(config, logger, { kubeConfig });
      simulator = new PodStatusSimulator(client, NS).start();
    });

    after(async () => {
      await simulator?.stop();
      await operator?.shutdown();
    });

    test('a VoiceEdgeCluster gets its objects by server-side apply, owned by it, and turns Ready', async () => {
      await kubectl(
        ['apply', '-f', '-'],
        clusterYaml(NS, 'edge').replace('relay: { replicas: 0,', 'relay: { replicas: 2,'),
      );
      const cluster = await get(RESOURCES.cluster, NS, 'edge');
      const owned: [(typeof RESOURCES)[keyof typeof RESOURCES], string][] = [
        [RESOURCES.serviceAccount, 'edge-routing-reader'],
        [RESOURCES.role, 'edge-routing-reader'],
        [RESOURCES.roleBinding, 'edge-routing-reader'],
        [RESOURCES.networkPolicy, 'edge-transceiver'],
        [RESOURCES.service, 'edge-relay'],
        [RESOURCES.podDisruptionBudget, 'edge-relay'],
        [RESOURCES.deployment, 'edge-relay'],
        [RESOURCES.service, 'edge-signaling'],
        [RESOURCES.deployment, 'edge-signaling'],
      ];
      await waitUntil(
        async () => (await Promise.all(owned.map(([r, n]) => tryGet(r, NS, n)))).every(Boolean),
        10_000,
        'every owned object',
      );
      for (const [resource, name] of owned) {
        const object = await get(resource, NS, name);
        assert.deepEqual(
          object.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
          [['VoiceEdgeCluster', 'edge', cluster.metadata.uid, true]],
          `${resource.kind}/${name} is owned by the cluster`,
        );
        assert.ok(
          object.metadata.managedFields?.some(
            (f) => f.manager === 'voice-edge-operator' && f.operation === 'Apply',
          ),
          `${resource.kind}/${name} is applied by the field manager voice-edge-operator`,
        );
      }
      const relay = await get(RESOURCES.service, NS, 'edge-relay');
      assert.equal((relay.spec as { externalTrafficPolicy: string }).externalTrafficPolicy, 'Local');
      const ledger = await get(RESOURCES.configMap, NS, 'edge-transceiver-ids');
      assert.equal(ledger.data?.next, '1');
      assert.deepEqual((await routingTable(NS, 'edge'))?.transceivers, []);
      assert.ok(
        (await get(RESOURCES.cluster, NS, 'edge')).metadata.finalizers?.includes('voice-edge.io/cluster'),
      );

      // Two relay replicas wanted, none available (no controller-manager here): not Ready, and why.
      await waitForCondition(RESOURCES.cluster, NS, 'edge', 'Ready', 'False');
      assert.equal(condition(await get(RESOURCES.cluster, NS, 'edge'), 'Ready')?.reason, 'RelayUnavailable');
      // What the Deployment controller would report once the relays run.
      const deployment = await get(RESOURCES.deployment, NS, 'edge-relay');
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      await client.request('PATCH', resourcePath(RESOURCES.deployment, NS, 'edge-relay', 'status'), {
        contentType: 'application/merge-patch+json',
        body: {
          status: {
            observedGeneration: deployment.metadata.generation,
            replicas: 2,
            updatedReplicas: 2,
            readyReplicas: 2,
            availableReplicas: 2,
            conditions: [
              {
                type: 'Available',
                status: 'True',
                reason: 'MinimumReplicasAvailable',
                lastUpdateTime: now,
                lastTransitionTime: now,
              },
            ],
          },
        },
      });
      await kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'vec/edge', '--timeout=10s']);
      const ready = await get(RESOURCES.cluster, NS, 'edge');
      assert.deepEqual(ready.status?.relayAddresses, ['203.0.113.7:3478']);
      assert.equal(condition(ready, 'Degraded')?.status, 'False');
      assert.equal(condition(ready, 'Progressing')?.status, 'False');
    });

    test('the internal-API credential: created once with a random token, owned by the cluster, never overwritten; a rotation rolls signaling', async () => {
      const cluster = await get(RESOURCES.cluster, NS, 'edge');
      const secret = await get<Obj & { type: string }>(RESOURCES.secret, NS, 'edge-transceiver-api');
      assert.deepEqual(
        secret.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
        [['VoiceEdgeCluster', 'edge', cluster.metadata.uid, true]],
      );
      const created = readApiCredential(secret);
      assert.ok(created.ok, JSON.stringify(created));
      assert.match(created.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
      const hashOf = async () =>
        (
          (await get(RESOURCES.deployment, NS, 'edge-signaling')).spec as {
            template: { metadata: { annotations?: Record<string, string> } };
          }
        ).template.metadata.annotations?.['voice-edge.io/transceiver-api-tokens-hash'];
      assert.equal(await hashOf(), created.hash);

      // A person rotates it (step one: old,new): the operator keeps it and rolls signaling.
      const rotated = Buffer.from(`${created.token},second-token`).toString('base64');
      await client.request('PATCH', resourcePath(RESOURCES.secret, NS, 'edge-transceiver-api'), {
        contentType: 'application/merge-patch+json',
        body: { data: { tokens: rotated } },
      });
      // The operator reads the Secret at each reconcile of the cluster: any change to it triggers one.
      await kubectl(['-n', NS, 'annotate', 'vec/edge', 'rotated=1']);
      const expected = readApiCredential({ data: { tokens: rotated } });
      assert.ok(expected.ok);
      await waitUntil(async () => (await hashOf()) === expected.hash, 10_000, 'signaling rolls');
      const after = await get(RESOURCES.secret, NS, 'edge-transceiver-api');
      assert.equal(after.data?.tokens, rotated, 'never overwritten');
      assert.equal(after.metadata.uid, secret.metadata.uid, 'never recreated');
    });

    test('the NetworkPolicy: relays to the tunnel port, signaling and the operator to the API port; disabled, it goes', async () => {
      const policy = await get<
        Obj & { spec: { podSelector: unknown; policyTypes: string[]; ingress: unknown[] } }
      >(RESOURCES.networkPolicy, NS, 'edge-transceiver');
      const selector = (component: string) => ({
        matchLabels: {
          'app.kubernetes.io/component': component,
          'app.kubernetes.io/instance': 'edge',
          'app.kubernetes.io/name': 'voice-edge',
        },
      });
      assert.deepEqual(policy.spec.podSelector, selector('transceiver'));
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      assert.deepEqual(policy.spec.ingress, [
        { from: [{ podSelector: selector('relay') }], ports: [{ protocol: 'UDP', port: 7000 }] },
        {
          from: [
            { podSelector: selector('signaling') },
            {
              // The in-process operator knows no namespace of its own: its pod labels in any namespace.
              namespaceSelector: {},
              podSelector: {
                matchLabels: {
                  'app.kubernetes.io/component': 'operator',
                  'app.kubernetes.io/name': 'voice-edge',
                },
              },
            },
          ],
          ports: [{ protocol: 'TCP', port: 8090 }],
        },
      ]);
      const patch = (networkPolicy: unknown) =>
        kubectl([
          '-n',
          NS,
          'patch',
          'vec/edge',
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { networkPolicy } }),
        ]);
      await patch({ enabled: false });
      await waitUntil(
        async () => (await tryGet(RESOURCES.networkPolicy, NS, 'edge-transceiver')) === undefined,
        10_000,
        'the NetworkPolicy deleted',
      );
      const prometheus = {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
      };
      await patch({ enabled: true, metricsFrom: [prometheus] });
      await waitUntil(
        async () =>
          (
            (await tryGet(RESOURCES.networkPolicy, NS, 'edge-transceiver')) as
              | (Obj & { spec: { ingress: unknown[] } })
              | undefined
          )?.spec.ingress.length === 3,
        10_000,
        'the NetworkPolicy back, with the metrics peer',
      );
      const refused = await cp.kubectl(['apply', '-f', '-'], {
        input: clusterYaml(NS, 'edge', '  networkPolicy: { metricsFrom: [{}] }'),
      });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /a metricsFrom peer needs a namespaceSelector or a podSelector/);
    });

    test("relay pods' IPs are published as relaySources and follow a replaced relay", async () => {
      // What the relay Deployment's ReplicaSet would create (no controller-manager here).
      const relayPod = (name: string) =>
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name,
            namespace: NS,
            labels: {
              'app.kubernetes.io/name': 'voice-edge',
              'app.kubernetes.io/instance': 'edge',
              'app.kubernetes.io/component': 'relay',
              'app.kubernetes.io/managed-by': 'voice-edge-operator',
            },
          },
          spec: {
            containers: [{ name: 'relay', image: 'ghcr.io/voice-edge/voice-edge:test', args: ['relay'] }],
          },
        });
      const sources = async () => (await routingTable(NS, 'edge'))?.relaySources ?? [];
      const cidrs = (...names: string[]) =>
        names
          .map((name) => simulator.ips.get(name)!)
          .map((ip) => ({
            ip,
            key: ip
              .split('.')
              .map((octet) => octet.padStart(3, '0'))
              .join('.'),
          }))
          .toSorted((a, b) => a.key.localeCompare(b.key))
          .map(({ ip }) => `${ip}/32`);
      await kubectl(['apply', '-f', '-'], relayPod('edge-relay-a'));
      await kubectl(['apply', '-f', '-'], relayPod('edge-relay-b'));
      await waitUntil(
        async () => (await sources()).length === 2,
        10_000,
        'both relay pods published once they have IPs',
      );
      assert.deepEqual(await sources(), cidrs('edge-relay-a', 'edge-relay-b'));
      const before = (await routingTable(NS, 'edge'))!.generation;

      await kubectl(['-n', NS, 'delete', 'pod', 'edge-relay-a']);
      await kubectl(['apply', '-f', '-'], relayPod('edge-relay-c'));
      await waitUntil(
        async () =>
          simulator.ips.has('edge-relay-c') &&
          JSON.stringify(await sources()) === JSON.stringify(cidrs('edge-relay-b', 'edge-relay-c')),
        10_000,
        'the replaced relay published',
      );
      const table = (await routingTable(NS, 'edge'))!;
      assert.ok(table.generation > before);
      // Stable otherwise: no new generation without a change.
      await sleep(1_000);
      assert.equal((await routingTable(NS, 'edge'))!.generation, table.generation);
      await kubectl(['-n', NS, 'delete', 'pod', 'edge-relay-b', 'edge-relay-c']);
      await waitUntil(async () => (await sources()).length === 0, 10_000, 'no relay pods, no relaySources');
    });

    test('a credential Secret that holds no valid token: Degraded, no pods; repaired: Ready', async () => {
      await kubectl([
        '-n',
        NS,
        'create',
        'secret',
        'generic',
        'broken-api',
        '--from-literal=tokens=not a token',
      ]);
      await kubectl(
        ['apply', '-f', '-'],
        [
          clusterYaml(NS, 'broken', '  transceiverApi: { secretName: broken-api }'),
          poolYaml(NS, 'stalled', 'broken', 1),
        ].join('\n---\n'),
      );
      await waitForCondition(RESOURCES.cluster, NS, 'broken', 'Degraded', 'True');
      const degraded = condition(await get(RESOURCES.cluster, NS, 'broken'), 'Degraded') as {
        reason: string;
        message?: string;
      };
      assert.equal(degraded.reason, 'TransceiverApiCredentialUnavailable');
      await waitUntil(
        async () =>
          condition(await tryGet(RESOURCES.pool, NS, 'stalled'), 'Ready')?.reason ===
          'TransceiverApiCredentialUnavailable',
        10_000,
        'the pool says why it creates no pod',
      );
      assert.deepEqual(await podsOf(NS, 'stalled'), []);
      assert.equal(
        Buffer.from((await get(RESOURCES.secret, NS, 'broken-api')).data!.tokens!, 'base64').toString(),
        'not a token',
        'left as it is',
      );
      await client.request('PATCH', resourcePath(RESOURCES.secret, NS, 'broken-api'), {
        contentType: 'application/merge-patch+json',
        body: { data: { tokens: Buffer.from('a-valid-token').toString('base64') } },
      });
      await kubectl(['-n', NS, 'annotate', 'vec/broken', 'repaired=1']);
      await waitForCondition(RESOURCES.cluster, NS, 'broken', 'Degraded', 'False');
      await waitUntil(
        async () => (await podsOf(NS, 'stalled')).length === 1,
        10_000,
        'the pool creates its pod',
      );
      const pod = (await podsOf(NS, 'stalled'))[0]!;
      const expected = readApiCredential({
        data: { tokens: Buffer.from('a-valid-token').toString('base64') },
      });
      assert.ok(expected.ok);
      assert.equal(pod.metadata.annotations?.['voice-edge.io/transceiver-api-tokens-hash'], expected.hash);
      await kubectl(['-n', NS, 'delete', 'tp/stalled', '--wait=false']);
      await waitUntil(
        async () => (await tryGet(RESOURCES.pool, NS, 'stalled')) === undefined,
        15_000,
        'pool gone',
      );
      await kubectl(['-n', NS, 'delete', 'vec/broken']);
    });

    test('a pool gets one pod per ID, published in the routing table, and kubectl wait sees it Ready', async () => {
      await kubectl(['apply', '-f', '-'], poolYaml(NS, 'echo', 'edge', 3));
      await kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'tp/echo', 'vec/edge', '--timeout=20s']);
      const pool = await get(RESOURCES.pool, NS, 'echo');
      const pods = await podsOf(NS, 'echo');
      assert.deepEqual(
        pods.map(idOf).toSorted((a, b) => a - b),
        [1, 2, 3],
      );
      for (const pod of pods) {
        const id = idOf(pod);
        assert.equal(pod.metadata.name, `echo-${id}`);
        assert.deepEqual(
          pod.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
          [['TransceiverPool', 'echo', pool.metadata.uid, true]],
        );
        assert.ok(pod.metadata.managedFields?.some((f) => f.manager === 'voice-edge-operator'));
        const env = Object.fromEntries(
          (
            (pod.spec as { containers: { env: { name: string; value?: string }[] }[] }).containers[0]!.env ??
            []
          ).map((e) => [e.name, e.value]),
        );
        assert.equal(env.VOICE_EDGE_TRANSCEIVER_TRANSCEIVER_ID, String(id));
        assert.equal(env.VOICE_EDGE_TRANSCEIVER_CLUSTER_ID, '7');
      }
      const table = await routingTable(NS, 'edge');
      assert.deepEqual(
        table?.transceivers.map((t) => [t.id, t.tunnel, t.api, t.state]),
        pods
          .map((pod) => {
            const ip = simulator.ips.get(pod.metadata.name)!;
            return [idOf(pod), `${ip}:7000`, `http://${ip}:8090`, 'active'];
          })
          .toSorted((a, b) => (a[0] as number) - (b[0] as number)),
      );
      const cluster = await get(RESOURCES.cluster, NS, 'edge');
      assert.equal(cluster.status?.routingTableGeneration, table?.generation);
      assert.equal(cluster.status?.transceivers, 3);
      assert.deepEqual(
        {
          replicas: pool.status?.replicas,
          readyReplicas: pool.status?.readyReplicas,
          drainingReplicas: pool.status?.drainingReplicas,
          capacity: pool.status?.capacity,
          selector: pool.status?.selector,
        },
        {
          replicas: 3,
          readyReplicas: 3,
          drainingReplicas: 0,
          capacity: 150,
          selector:
            'app.kubernetes.io/name=voice-edge,app.kubernetes.io/instance=edge,app.kubernetes.io/component=transceiver,voice-edge.io/pool=echo',
        },
      );
      assert.equal((await get(RESOURCES.configMap, NS, 'edge-transceiver-ids')).data?.next, '4');
      const metrics = await operator.metrics.registry.metrics();
      assert.match(metrics, /^voice_edge_operator_leader 1$/m);
      assert.match(
        metrics,
        /^voice_edge_operator_id_allocations_total\{namespace="inproc",cluster="edge"\} 3$/m,
      );
      assert.match(
        metrics,
        new RegExp(
          `^voice_edge_operator_routing_table_generation\\{namespace="inproc",cluster="edge"\\} ${table?.generation}$`,
          'm',
        ),
      );
      assert.match(
        metrics,
        /^voice_edge_operator_transceivers\{namespace="inproc",pool="echo",state="active"\} 3$/m,
      );
      assert.match(
        metrics,
        /^voice_edge_operator_reconciles_total\{kind="TransceiverPool",result="ok"\} \d+$/m,
      );
      const http = `http://127.0.0.1:${operator.httpPort}`;
      assert.equal((await fetch(`${http}/readyz`)).status, 200);
      assert.match(
        await (await fetch(`${http}/metrics`)).text(),
        /voice_edge_operator_routing_table_publishes_total/,
      );
    });

    test('scale up adds IDs; scale down drains (annotation, then routing table), then deletes at the drain timeout', async () => {
      await kubectl(['-n', NS, 'scale', 'tp/echo', '--replicas=5']);
      await waitUntil(async () => (await podsOf(NS, 'echo')).length === 5, 10_000, '5 pods');
      assert.deepEqual(
        (await podsOf(NS, 'echo')).map(idOf).toSorted((a, b) => a - b),
        [1, 2, 3, 4, 5],
      );
      await waitForCondition(RESOURCES.pool, NS, 'echo', 'Ready', 'True');
      const before = await routingTable(NS, 'edge');

      const scaledAt = Math.floor(Date.now() / 1000);
      await kubectl(['-n', NS, 'scale', 'tp/echo', '--replicas=2']);
      // Unknown sessions everywhere: the highest IDs go first.
      await waitUntil(
        async () =>
          (await routingTable(NS, 'edge'))?.transceivers.filter((t) => t.state === 'draining').length === 3,
        5_000,
        'three transceivers published as draining',
      );
      const draining = (await routingTable(NS, 'edge'))!;
      assert.ok(draining.generation > before!.generation);
      const entries = draining.transceivers.filter((t) => t.state === 'draining');
      assert.deepEqual(
        entries.map((t) => t.id),
        [3, 4, 5],
      );
      for (const entry of entries) {
        assert.ok(entry.drainingSince! >= scaledAt - 1 && entry.drainingSince! <= scaledAt + 2);
        const pod = await get(RESOURCES.pod, NS, `echo-${entry.id}`);
        assert.equal(pod.metadata.annotations?.['voice-edge.io/draining-since'], String(entry.drainingSince));
      }
      await waitUntil(
        async () => (await get(RESOURCES.pool, NS, 'echo')).status?.drainingReplicas === 3,
        5_000,
        'status.drainingReplicas 3',
      );
      assert.equal(condition(await get(RESOURCES.pool, NS, 'echo'), 'Progressing')?.status, 'True');

      // Nobody answers /status: the pods go when drainTimeoutSeconds (2) has passed, not before.
      await sleep(1_000);
      assert.equal((await podsOf(NS, 'echo')).length, 5, 'no pod deleted before its drain timeout');
      await waitUntil(async () => (await podsOf(NS, 'echo')).length === 2, 6_000, 'drained pods deleted');
      assert.deepEqual(
        (await podsOf(NS, 'echo')).map(idOf).toSorted((a, b) => a - b),
        [1, 2],
      );
      await waitUntil(
        async () => (await routingTable(NS, 'edge'))?.transceivers.length === 2,
        5_000,
        'the routing table without them',
      );
      await waitForCondition(RESOURCES.pool, NS, 'echo', 'Progressing', 'False');
      await waitForCondition(RESOURCES.pool, NS, 'echo', 'Ready', 'True');

      const events = JSON.parse(await kubectl(['-n', NS, 'get', 'events.events.k8s.io', '-o', 'json'])) as {
        items: { reason: string; note: string; regarding: { name: string } }[];
      };
      const reasons = new Set(events.items.filter((e) => e.regarding.name === 'echo').map((e) => e.reason));
      for (const reason of ['ScalingUp', 'ScalingDown', 'DrainStarted', 'DrainTimeout']) {
        assert.ok(reasons.has(reason), `an Event ${reason} (have ${[...reasons].join(', ')})`);
      }
      // Scaling back up never reuses the IDs of the pods just deleted.
      await kubectl(['-n', NS, 'scale', 'tp/echo', '--replicas=3']);
      await waitUntil(async () => (await podsOf(NS, 'echo')).length === 3, 10_000, '3 pods');
      assert.deepEqual(
        (await podsOf(NS, 'echo')).map(idOf).toSorted((a, b) => a - b),
        [1, 2, 6],
      );
    });

    test('two pools of one cluster share its ID space and its routing table', async () => {
      await kubectl(['apply', '-f', '-'], poolYaml(NS, 'llm', 'edge', 2));
      await kubectl(['-n', NS, 'wait', '--for=condition=Ready', 'tp/llm', '--timeout=20s']);
      const ids = (await podsOf(NS)).map(idOf);
      assert.equal(new Set(ids).size, ids.length, `unique IDs: ${ids}`);
      assert.deepEqual(
        (await podsOf(NS, 'llm')).map(idOf).toSorted((a, b) => a - b),
        [7, 8],
      );
      await waitUntil(
        async () => (await routingTable(NS, 'edge'))?.transceivers.length === 5,
        5_000,
        'both pools in the routing table',
      );
    });

    test('a changed pod template replaces pods: new ones first, then the old ones drain', async () => {
      await kubectl([
        '-n',
        NS,
        'patch',
        'tp/llm',
        '--type=merge',
        '-p',
        JSON.stringify({
          spec: { template: { env: [{ name: 'VOICE_EDGE_TRANSCEIVER_LOG__LEVEL', value: 'debug' }] } },
        }),
      ]);
      await waitUntil(
        async () =>
          (await podsOf(NS, 'llm'))
            .filter((p) => !p.metadata.annotations?.['voice-edge.io/draining-since'])
            .map(idOf)
            .toSorted((a, b) => a - b)
            .join() === '9,10',
        10_000,
        'two new pods active',
      );
      await waitUntil(async () => (await podsOf(NS, 'llm')).length === 2, 8_000, 'the old pods drained away');
      await waitForCondition(RESOURCES.pool, NS, 'llm', 'Ready', 'True');
    });

    test('the built-in autoscaler writes spec.replicas through /scale with its own field manager', async () => {
      await kubectl(
        ['apply', '-f', '-'],
        poolYaml(
          NS,
          'auto',
          'edge',
          1,
          '  autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 4, scaleDownStabilizationSeconds: 1 }',
        ),
      );
      await waitUntil(
        async () => (await get(RESOURCES.pool, NS, 'auto')).spec?.replicas === 2,
        10_000,
        'replicas raised to minReplicas',
      );
      const pool = await get(RESOURCES.pool, NS, 'auto');
      assert.ok(
        pool.metadata.managedFields?.some(
          (f) => f.manager === 'voice-edge-autoscaler' && f.subresource === 'scale',
        ),
        'spec.replicas written by voice-edge-autoscaler through the scale subresource',
      );
      await waitUntil(async () => (await podsOf(NS, 'auto')).length === 2, 10_000, '2 pods');
      // No transceiver reports sessions: that is never a reason to scale down.
      await sleep(2_000);
      assert.equal((await get(RESOURCES.pool, NS, 'auto')).spec?.replicas, 2);
      const events = await kubectl(['-n', NS, 'get', 'events', '--field-selector', 'reason=ScaledUp']);
      assert.match(events, /autoscaler: replicas 1 → 2/);
    });

    test('informers and leadership recover when the API server goes away and comes back', async () => {
      const restartsBefore = watchRestarts(await operator.metrics.registry.metrics());
      await cp.stopApiServer();
      await sleep(4_000); // longer than renewDeadlineMs (3 s): the in-process operator stops leading
      assert.equal(operator.leading(), false, 'no reconciling without a renewed lease');
      await cp.startApiServer();
      await waitUntil(async () => operator.leading(), 15_000, 'leadership again');
      await kubectl(['-n', NS, 'scale', 'tp/echo', '--replicas=4']);
      await waitUntil(
        async () => (await podsOf(NS, 'echo')).length === 4,
        15_000,
        'the scale-up after the outage',
      );
      await waitForCondition(RESOURCES.pool, NS, 'echo', 'Ready', 'True', 15_000);
      assert.ok(
        watchRestarts(await operator.metrics.registry.metrics()) > restartsBefore,
        'watches restarted',
      );
    });

    test('deleting a pool drains it first; deleting the cluster waits for its pools', async () => {
      await kubectl(['-n', NS, 'delete', 'vec/edge', '--wait=false']);
      await waitUntil(
        async () => condition(await tryGet(RESOURCES.cluster, NS, 'edge'), 'Ready')?.reason === 'Deleting',
        5_000,
        'the cluster reports what it waits for',
      );
      assert.ok(await tryGet(RESOURCES.cluster, NS, 'edge'), 'held by its finalizer while pools name it');

      await kubectl(['-n', NS, 'delete', 'tp/auto', 'tp/llm', '--wait=false']);
      await waitUntil(
        async () =>
          (await podsOf(NS, 'auto')).every((p) => p.metadata.annotations?.['voice-edge.io/draining-since']),
        5_000,
        'pods of a deleted pool drain',
      );
      assert.ok(await tryGet(RESOURCES.pool, NS, 'auto'), 'the pool stays while its pods drain');
      await waitUntil(
        async () => (await tryGet(RESOURCES.pool, NS, 'auto')) === undefined,
        10_000,
        'pool auto gone',
      );
      await waitUntil(
        async () => (await tryGet(RESOURCES.pool, NS, 'llm')) === undefined,
        10_000,
        'pool llm gone',
      );
      assert.deepEqual(await podsOf(NS, 'auto'), []);
      assert.ok(await tryGet(RESOURCES.cluster, NS, 'edge'), 'still held: pool echo names it');
      await kubectl(['-n', NS, 'delete', 'tp/echo', '--wait=false']);
      await waitUntil(
        async () => (await tryGet(RESOURCES.cluster, NS, 'edge')) === undefined,
        15_000,
        'cluster gone',
      );
    });
  });

  function watchRestarts(metrics: string): number {
    let total = 0;
    for (const match of metrics.matchAll(/^voice_edge_operator_watch_restarts_total\{[^}]*\} (\d+)/gm)) {
      total += Number(match[1]);
    }
    return total;
  }

  test('a leader releases its Lease on stop even when the version it last wrote is stale', async () => {
    // Stopping aborts a renewal in flight, which the API server may already have applied: the
    // elector's last written version is then stale. A label written by someone else stands in for
    // that renewal here; a release that PUT the stale version would be refused (409) and leave the
    // standby to wait out the lease.
    const ns = 'lease-release';
    await namespace(ns);
    let leading = false;
    const elector = new LeaderElector(client, {
      namespace: ns,
      name: 'voice-edge-operator',
      identity: 'stale-writer',
      leaseDurationSeconds: 30,
      renewDeadlineMs: 20_000,
      retryPeriodMs: 60_000, // no renewal between the foreign write and the stop
      logger: pino({ level: 'silent' }),
      onStartedLeading: () => {
        leading = true;
      },
      onStoppedLeading: () => {
        leading = false;
      },
    });
    elector.start();
    try {
      await waitUntil(async () => leading, 5_000, 'the elector leads');
      await kubectl(['-n', ns, 'label', 'lease/voice-edge-operator', 'touched=yes']);
    } finally {
      await elector.stop();
    }
    assert.equal(leading, false);
    const lease = await get<{ spec: { holderIdentity: string } }>(RESOURCES.lease, ns, 'voice-edge-operator');
    assert.equal(lease.spec.holderIdentity, '', 'released');
  });

  describe('as processes: crashes and leader election', () => {
    test('a crash between ID allocation and pod creation leaves a gap, never a reused ID', async () => {
      const ns = 'crash-point';
      await namespace(ns);
      await kubectl(
        ['apply', '-f', '-'],
        clusterYaml(ns, 'edge') + poolYaml(ns, 'echo', 'edge', 3).replace(/^\n/, '---\n'),
      );
      const crashing = await OperatorProcess.start({
        kubeconfigPath: operatorKubeconfig,
        logName: 'crash-point-1',
        waitForHealth: false,
        env: operatorEnv(ns, {
          VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED: 'false',
          VOICE_EDGE_OPERATOR_FAULTS__CRASH_AT: 'after-id-allocation',
        }),
      });
      const exit = await crashing.exited;
      assert.equal(exit.signal, 'SIGKILL', 'it crashed at the named point');
      assert.equal((await get(RESOURCES.configMap, ns, 'edge-transceiver-ids')).data?.next, '4');
      assert.deepEqual(await podsOf(ns), [], 'no pod carries the allocated IDs');

      const restarted = await OperatorProcess.start({
        kubeconfigPath: operatorKubeconfig,
        logName: 'crash-point-2',
        env: operatorEnv(ns, { VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED: 'false' }),
      });
      try {
        await waitUntil(async () => (await podsOf(ns)).length === 3, 15_000, '3 pods after the restart');
        assert.deepEqual(
          (await podsOf(ns)).map(idOf).toSorted((a, b) => a - b),
          [4, 5, 6],
        );
        assert.equal((await get(RESOURCES.configMap, ns, 'edge-transceiver-ids')).data?.next, '7');
      } finally {
        await restarted.stop();
      }
    });

    test('SIGKILLed at random moments while pools change, it never duplicates or reuses an ID, and converges', async () => {
      const ns = 'chaos';
      await namespace(ns);
      await kubectl(
        ['apply', '-f', '-'],
        [clusterYaml(ns, 'edge'), poolYaml(ns, 'a', 'edge', 2), poolYaml(ns, 'b', 'edge', 2)].join('\n---\n'),
      );
      // Every pod ever created, from the test's own watch: ID → pod UIDs.
      const owners = new Map<number, Set<string>>();
      const watch = new Watch(cp.kubeConfig());
      const controller = await watch.watch(
        `/api/v1/namespaces/${ns}/pods`,
        {},
        (_phase, pod: Obj) => {
          const id = idOf(pod);
          if (!owners.has(id)) owners.set(id, new Set());
          owners.get(id)!.add(pod.metadata.uid);
        },
        () => undefined,
      );
      const simulator = new PodStatusSimulator(client, ns).start();
      const env = operatorEnv(ns, { VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED: 'false' });
      let seed = 20260611;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      try {
        for (let round = 0; round < 6; round++) {
          const child = await OperatorProcess.start({
            kubeconfigPath: operatorKubeconfig,
            logName: `chaos-${round}`,
            env,
          });
          for (const pool of ['a', 'b']) {
            await kubectl(['-n', ns, 'scale', `tp/${pool}`, `--replicas=${Math.floor(random() * 5)}`]);
          }
          await sleep(Math.floor(random() * 1_500));
          await child.kill();
        }
        await kubectl(['-n', ns, 'scale', 'tp/a', '--replicas=3']);
        await kubectl(['-n', ns, 'scale', 'tp/b', '--replicas=2']);
        const last = await OperatorProcess.start({
          kubeconfigPath: operatorKubeconfig,
          logName: 'chaos-final',
          env,
        });
        try {
          await kubectl([
            '-n',
            ns,
            'wait',
            '--for=condition=Ready',
            'tp/a',
            'tp/b',
            'vec/edge',
            '--timeout=30s',
          ]);
          await waitUntil(async () => (await podsOf(ns)).length === 5, 15_000, 'only the 5 wanted pods left');
          await waitForCondition(RESOURCES.pool, ns, 'a', 'Progressing', 'False', 10_000);
          await waitForCondition(RESOURCES.pool, ns, 'b', 'Progressing', 'False', 10_000);
        } finally {
          await last.stop();
        }
      } finally {
        controller.abort();
        await simulator.stop();
      }
      const reused = [...owners].filter(([, uids]) => uids.size > 1).map(([id]) => id);
      assert.deepEqual(reused, [], 'an ID carried by two pods');
      const next = Number((await get(RESOURCES.configMap, ns, 'edge-transceiver-ids')).data?.next);
      assert.ok(next > Math.max(...owners.keys()), `the ledger (${next}) is above every ID used`);
      assert.ok(owners.size >= 5);
    });

    test('two replicas: one leads; killed, the other takes over within the lease time; a released lease at once', async () => {
      const ns = 'election';
      await namespace(ns);
      await kubectl(
        ['apply', '-f', '-'],
        [clusterYaml(ns, 'edge'), poolYaml(ns, 'echo', 'edge', 1)].join('\n---\n'),
      );
      const env = operatorEnv(ns, {
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__LEASE_DURATION_SECONDS: '3',
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__RENEW_DEADLINE_MS: '2000',
        VOICE_EDGE_OPERATOR_LEADER_ELECTION__RETRY_PERIOD_MS: '300',
      });
      const first = await OperatorProcess.start({
        kubeconfigPath: operatorKubeconfig,
        logName: 'election-1',
        env,
      });
      await waitUntil(() => first.leading(), 10_000, 'the first replica leads');
      const second = await OperatorProcess.start({
        kubeconfigPath: operatorKubeconfig,
        logName: 'election-2',
        env,
      });
      let third: OperatorProcess | undefined;
      try {
        await waitUntil(async () => (await podsOf(ns)).length === 1, 10_000, 'the leader reconciles');
        const lease = await client.get<{ spec: { holderIdentity: string } }>(
          resourcePath(RESOURCES.lease, ns, 'voice-edge-operator'),
        );
        assert.ok(lease.spec.holderIdentity);
        await sleep(1_000);
        assert.equal(await second.leading(), false, 'the second stands by');
        assert.match(await second.metrics(), /voice_edge_operator_leader 0/);
        assert.equal(
          (await fetch(`http://127.0.0.1:${second.httpPort}/readyz`)).status,
          200,
          'a standby is ready',
        );

        const killedAt = Date.now();
        await first.kill();
        await waitUntil(() => second.leading(), 8_000, 'the second takes over');
        const takeover = Date.now() - killedAt;
        assert.ok(takeover <= 3_000 + 1_500, `took over in ${takeover} ms (lease 3 s)`);
        await kubectl(['-n', ns, 'scale', 'tp/echo', '--replicas=2']);
        await waitUntil(async () => (await podsOf(ns)).length === 2, 10_000, 'the new leader reconciles');

        third = await OperatorProcess.start({
          kubeconfigPath: operatorKubeconfig,
          logName: 'election-3',
          env,
        });
        await sleep(500);
        const releasedAt = Date.now();
        assert.equal((await second.stop()).code, 0, 'a graceful stop exits 0');
        await waitUntil(() => third!.leading(), 5_000, 'the third takes the released lease');
        const handover = Date.now() - releasedAt;
        assert.ok(handover < 2_000, `a released lease is taken in ${handover} ms, not after the lease time`);
      } finally {
        await first.kill();
        await second.kill();
        await third?.stop();
      }
      const ids = (await podsOf(ns)).map(idOf);
      assert.equal(new Set(ids).size, ids.length);
    });
  });
});
