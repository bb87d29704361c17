// The Helm chart and the CRDs against real tools: `helm lint --strict` and `helm template` with several
// value sets, values.schema.json rejecting bad values, `helm install` on a real kube-apiserver and the
// documented CRD upgrade over it, the rendered manifests applied (server-side dry run; RBAC for real, to
// ask it what the operator may do), then against the installed CRDs: the examples accepted, bad
// resources rejected with their CEL messages, defaults filled in, `kubectl explain` showing the
// descriptions, the scale subresource, printer columns.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { readTransceiverPool, readVoiceEdgeCluster } from '../../operator/api/v1alpha1.ts';
import { loadOperatorConfig } from '../../operator/config.ts';
import { desiredClusterObjects } from '../../operator/desired/cluster-objects.ts';
import { ledgerConfigMap, routingConfigMap } from '../../operator/desired/configmaps.ts';
import { newApiToken, transceiverApiSecret } from '../../operator/desired/transceiver-api-secret.ts';
import { transceiverPod } from '../../operator/desired/transceiver-pod.ts';
import { type CommandResult, type ControlPlane, startControlPlane } from '../kube/control-plane.ts';
import { OPERATOR_RBAC_RULES } from '../support/operator-harness.ts';
import { waitUntil } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'charts/voice-edge');
const CRDS = join(ROOT, 'crds');
const EXAMPLES = join(ROOT, 'examples/kubernetes');
const RELEASE_NAMESPACE = 'voice-edge-system';
const APP_VERSION = '0.1.0';

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field below
type Manifest = Record<string, any>;

let cluster: ControlPlane;
let installed: CommandResult;
const HELM_NAMESPACE = 'voice-edge-helm';

before(async () => {
  cluster = await startControlPlane({ components: [] });
  // Installed as docs/kubernetes.md says (Helm puts the CRDs in first); no operator pod runs here.
  installed = await helm([
    'install',
    'voice-edge',
    CHART,
    '--namespace',
    HELM_NAMESPACE,
    '--create-namespace',
    '--set',
    'operator.replicas=0',
  ]);
  assert.equal(installed.code, 0, installed.stderr);
  const established = await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/voiceedgeclusters.voice-edge.io',
    'crd/transceiverpools.voice-edge.io',
  ]);
  assert.equal(established.code, 0, established.stderr);
  for (const namespace of [RELEASE_NAMESPACE, 'team-a', 'edge']) {
    const created = await kubectl(['create', 'namespace', namespace]);
    assert.equal(created.code, 0, created.stderr);
    // No controller-manager runs here: create the `default` ServiceAccount pods fall back to.
    const account = await kubectl(['create', 'serviceaccount', 'default', '-n', namespace]);
    assert.equal(account.code, 0, account.stderr);
  }
});

after(async () => {
  await cluster?.stop();
});

function kubectl(args: string[], input?: string) {
  return cluster.kubectl(args, input === undefined ? {} : { input });
}

function helm(args: string[]) {
  return cluster.helm(args);
}

/** `helm template` of the chart with `--set` values; throws with helm's message on failure. */
async function render(
  values: Record<string, string> = {},
  namespace = RELEASE_NAMESPACE,
): Promise<Manifest[]> {
  const result = await helm(['template', 'edge', CHART, '--namespace', namespace, ...setArgs(values)]);
  assert.equal(result.code, 0, result.stderr);
  return parseManifests(result.stdout);
}

function setArgs(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
}

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text).map((document) => {
    assert.deepEqual(document.errors, []);
    return document.toJS() as Manifest;
  });
}

const find = (manifests: Manifest[], kind: string, name?: string) =>
  manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));

const one = (manifests: Manifest[], kind: string, name?: string): Manifest => {
  const found = find(manifests, kind, name);
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''} in ${manifests.map((m) => m?.kind)}`);
  return found[0]!;
};

const envOf = (deployment: Manifest): Record<string, Manifest> =>
  Object.fromEntries(
    deployment.spec.template.spec.containers[0].env.map((variable: Manifest) => [variable.name, variable]),
  );

/** Applies YAML text with a server-side dry run; returns kubectl's result. */
function dryRun(text: string, namespace = 'edge') {
  return kubectl(['apply', '--server-side', '--dry-run=server', '-n', namespace, '-f', '-'], text);
}

const clusterYaml = (spec: Manifest = {}, name = 'bad'): string =>
  stringify({
    apiVersion: 'voice-edge.io/v1alpha1',
    kind: 'VoiceEdgeCluster',
    metadata: { name },
    spec: { clusterId: 7, routingKeys: { secretName: 'keys' }, ...spec },
  });
const poolYaml = (spec: Manifest = {}, name = 'bad'): string =>
  stringify({
    apiVersion: 'voice-edge.io/v1alpha1',
    kind: 'TransceiverPool',
    metadata: { name },
    spec: { clusterName: 'edge', backend: { url: 'ws://agent:8081/' }, ...spec },
  });

/** The container's environment as the kubelet would resolve it (fieldRefs from `pod`, then `$(VAR)`). */
function resolvedEnv(deployment: Manifest, pod: { name: string; namespace: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const variable of deployment.spec.template.spec.containers[0].env) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    const value =
      field === 'metadata.name' ? pod.name : field === 'metadata.namespace' ? pod.namespace : variable.value;
    assert.equal(typeof value, 'string', `${variable.name} resolves to text`);
    out[variable.name] = value.replace(/\$\((\w+)\)/g, (_: string, name: string) => out[name] ?? '');
  }
  return out;
}

const OPERATOR_RULES = [
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters', 'transceiverpools'],
    verbs: ['get', 'list', 'watch', 'update', 'patch'],
  },
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters/status', 'transceiverpools/status'],
    verbs: ['get', 'update', 'patch'],
  },
  { apiGroups: ['voice-edge.io'], resources: ['transceiverpools/scale'], verbs: ['get', 'patch'] },
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters/finalizers', 'transceiverpools/finalizers'],
    verbs: ['update'],
  },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete', 'patch'] },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: [''],
    resources: ['services', 'serviceaccounts'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: ['apps'],
    resources: ['deployments'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: ['policy'],
    resources: ['poddisruptionbudgets'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['roles', 'rolebindings'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['get', 'create', 'patch', 'delete'],
  },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];

describe('helm lint and template', () => {
  const valueSets: Record<string, Record<string, string>> = {
    defaults: {},
    'one namespace, no leader election': {
      'operator.watchNamespace': 'team-a',
      'operator.leaderElection.enabled': 'false',
    },
    'two replicas, pinned tag, example cluster, ServiceMonitor': {
      'operator.replicas': '2',
      'image.tag': '1.2.3',
      'exampleCluster.enabled': 'true',
      'metrics.serviceMonitor.enabled': 'true',
    },
    'existing ServiceAccount, no metrics Service': {
      'serviceAccount.create': 'false',
      'serviceAccount.name': 'my-operator',
      'metrics.service.enabled': 'false',
    },
    'dual-stack IP families': { ipFamilies: '{IPv6,IPv4}' },
  };

  for (const [name, values] of Object.entries(valueSets)) {
    test(`helm lint --strict: ${name}`, async () => {
      const result = await helm([
        'lint',
        '--strict',
        CHART,
        '--namespace',
        RELEASE_NAMESPACE,
        ...setArgs(values),
      ]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }

  test('defaults: the operator Deployment, its ServiceAccount, least-privilege RBAC and a metrics Service', async () => {
    const manifests = await render();
    for (const manifest of manifests) {
      assert.ok(manifest && typeof manifest === 'object', 'no empty documents');
      assert.equal(manifest.metadata.labels['app.kubernetes.io/part-of'], 'voice-edge');
      assert.equal(manifest.metadata.labels['app.kubernetes.io/instance'], 'edge');
      assert.equal(manifest.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
      assert.equal(manifest.metadata.labels['app.kubernetes.io/version'], APP_VERSION);
    }
    assert.deepEqual(manifests.map((m) => m.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);

    const deployment = one(manifests, 'Deployment');
    assert.equal(deployment.metadata.namespace, RELEASE_NAMESPACE);
    assert.equal(deployment.spec.replicas, 1);
    const pod = deployment.spec.template.spec;
    assert.equal(pod.serviceAccountName, one(manifests, 'ServiceAccount').metadata.name);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const container = pod.containers[0];
    assert.equal(container.image, `ghcr.io/voice-edge/voice-edge:${APP_VERSION}`);
    assert.deepEqual(container.args, ['operator']);
    assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext.runAsNonRoot, true);
    assert.deepEqual(container.ports, [{ name: 'metrics', containerPort: 9095, protocol: 'TCP' }]);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });

    const env = envOf(deployment);
    assert.equal(env.VOICE_EDGE_OPERATOR_IMAGE?.value, container.image);
    assert.equal(env.POD_NAME?.valueFrom.fieldRef.fieldPath, 'metadata.name');
    assert.equal(env.POD_NAMESPACE?.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
    assert.equal(env.VOICE_EDGE_OPERATOR_WATCH_NAMESPACE?.value, '');
    assert.equal(env.VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED?.value, 'true');
    assert.equal(env.VOICE_EDGE_OPERATOR_LEADER_ELECTION__NAMESPACE?.value, RELEASE_NAMESPACE);
    assert.equal(env.VOICE_EDGE_OPERATOR_LEADER_ELECTION__LEASE_NAME?.value, 'voice-edge-operator');
    assert.equal(env.VOICE_EDGE_OPERATOR_HTTP__PORT?.value, '9095');
    // The operator reads exactly this environment as a valid configuration (no config file in a pod).
    const config = loadOperatorConfig(
      undefined,
      resolvedEnv(deployment, { name: 'op-1', namespace: 'ns-x' }),
    );
    assert.equal(config.image, container.image);
    assert.equal(config.podName, 'op-1');
    assert.equal(config.watchNamespace, '');
    assert.equal(config.leaderElection.enabled, true);
    assert.equal(config.leaderElection.namespace, RELEASE_NAMESPACE);
    assert.equal(config.leaderElection.leaseName, 'voice-edge-operator');
    assert.deepEqual(config.http, { host: '0.0.0.0', port: 9095 });
    assert.equal(config.status.intervalMs, 2000);
    // The NetworkPolicies select the operator's pods by exactly the Deployment's selector labels.
    assert.deepEqual(config.networkPolicy, {
      operatorNamespace: RELEASE_NAMESPACE,
      operatorPodLabels: deployment.spec.selector.matchLabels,
    });

    assert.deepEqual(one(manifests, 'ClusterRole').rules, OPERATOR_RULES);
    const binding = one(manifests, 'ClusterRoleBinding');
    assert.deepEqual(binding.subjects, [
      {
        kind: 'ServiceAccount',
        name: one(manifests, 'ServiceAccount').metadata.name,
        namespace: RELEASE_NAMESPACE,
      },
    ]);
    const leases = one(manifests, 'Role');
    assert.equal(leases.metadata.namespace, RELEASE_NAMESPACE);
    assert.deepEqual(leases.rules, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);
    const everyRule = [...one(manifests, 'ClusterRole').rules, ...leases.rules];
    assert.deepEqual(
      everyRule
        .filter((rule: Manifest) => rule.resources.includes('secrets'))
        .map((rule: Manifest) => rule.verbs),
      [['get', 'create']],
      'Secrets: get and create only (the internal-API credential), never list or watch',
    );
    // The chart grants at least what the operator needs (OPERATOR_RBAC_RULES, docs/operator.md's
    // table, with which the integration tests run it).
    for (const needed of OPERATOR_RBAC_RULES) {
      for (const resource of needed.resources) {
        for (const verb of needed.verbs) {
          assert.ok(
            everyRule.some(
              (rule: Manifest) =>
                rule.apiGroups.includes(needed.apiGroups[0]) &&
                rule.resources.includes(resource) &&
                rule.verbs.includes(verb),
            ),
            `the chart grants ${verb} ${needed.apiGroups[0] || 'core'}/${resource}`,
          );
        }
      }
    }
    assert.ok(
      !everyRule.some((rule: Manifest) => [...rule.resources, ...rule.verbs].includes('*')),
      'no wildcards',
    );

    const service = one(manifests, 'Service');
    assert.deepEqual(service.spec.ports, [
      { name: 'metrics', port: 9095, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    assert.deepEqual(
      { ...deployment.spec.template.metadata.labels, ...deployment.spec.selector.matchLabels },
      deployment.spec.template.metadata.labels,
      'the pod template carries the selector labels',
    );
  });

  test('watchNamespace: a Role in that namespace instead of a ClusterRole; no Lease Role without leader election', async () => {
    const manifests = await render({
      'operator.watchNamespace': 'team-a',
      'operator.leaderElection.enabled': 'false',
    });
    assert.deepEqual(find(manifests, 'ClusterRole'), []);
    assert.deepEqual(find(manifests, 'ClusterRoleBinding'), []);
    const role = one(manifests, 'Role');
    assert.equal(role.metadata.namespace, 'team-a');
    assert.deepEqual(role.rules, OPERATOR_RULES);
    const binding = one(manifests, 'RoleBinding');
    assert.equal(binding.metadata.namespace, 'team-a');
    assert.equal(binding.roleRef.kind, 'Role');
    assert.equal(binding.subjects[0].namespace, RELEASE_NAMESPACE);
    const env = envOf(one(manifests, 'Deployment'));
    assert.equal(env.VOICE_EDGE_OPERATOR_WATCH_NAMESPACE?.value, 'team-a');
    assert.equal(env.VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED?.value, 'false');
    assert.equal(env.VOICE_EDGE_OPERATOR_LEADER_ELECTION__NAMESPACE, undefined);
    const config = loadOperatorConfig(
      undefined,
      resolvedEnv(one(manifests, 'Deployment'), { name: 'a', namespace: 'b' }),
    );
    assert.equal(config.watchNamespace, 'team-a');
    assert.equal(config.leaderElection.enabled, false);
  });

  test('image tag, replicas, example VoiceEdgeCluster and ServiceMonitor follow the values', async () => {
    const manifests = await render({
      'operator.replicas': '2',
      'image.tag': '1.2.3',
      'exampleCluster.enabled': 'true',
      'metrics.serviceMonitor.enabled': 'true',
    });
    const deployment = one(manifests, 'Deployment');
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(deployment.spec.template.spec.containers[0].image, 'ghcr.io/voice-edge/voice-edge:1.2.3');
    assert.equal(envOf(deployment).VOICE_EDGE_OPERATOR_IMAGE?.value, 'ghcr.io/voice-edge/voice-edge:1.2.3');
    const example = one(manifests, 'VoiceEdgeCluster');
    assert.deepEqual(example.spec, { clusterId: 1, routingKeys: { secretName: 'voice-edge-routing-keys' } });
    const monitor = one(manifests, 'ServiceMonitor');
    assert.deepEqual(monitor.spec.selector.matchLabels, one(manifests, 'Service').spec.selector);
    assert.deepEqual(monitor.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s' }]);
  });

  test('ipFamilies: the operator serves HTTP on :: with IPv6, the metrics Service takes the families', async () => {
    const defaults = await render();
    assert.equal(envOf(one(defaults, 'Deployment')).VOICE_EDGE_OPERATOR_HTTP__HOST?.value, '0.0.0.0');
    assert.equal(one(defaults, 'Service').spec.ipFamilies, undefined);
    assert.equal(one(defaults, 'Service').spec.ipFamilyPolicy, undefined);
    for (const [families, policy] of [
      [['IPv6'], 'SingleStack'],
      [['IPv4', 'IPv6'], 'RequireDualStack'],
    ] as const) {
      const manifests = await render({ ipFamilies: `{${families.join(',')}}` });
      // `::` is read back by the operator's env overrides as the address (config/env-overrides.ts).
      const host = envOf(one(manifests, 'Deployment')).VOICE_EDGE_OPERATOR_HTTP__HOST?.value;
      assert.equal(host, '::');
      const pod = { name: 'op-1', namespace: 'ns-x' };
      const config = loadOperatorConfig(undefined, resolvedEnv(one(manifests, 'Deployment'), pod));
      assert.deepEqual(config.http, { host: '::', port: 9095 });
      assert.deepEqual(one(manifests, 'Service').spec.ipFamilies, families);
      assert.equal(one(manifests, 'Service').spec.ipFamilyPolicy, policy);
    }
  });

  test('an existing ServiceAccount is used, not created', async () => {
    const manifests = await render({
      'serviceAccount.create': 'false',
      'serviceAccount.name': 'my-operator',
    });
    assert.deepEqual(find(manifests, 'ServiceAccount'), []);
    assert.equal(one(manifests, 'Deployment').spec.template.spec.serviceAccountName, 'my-operator');
    assert.equal(one(manifests, 'ClusterRoleBinding').subjects[0].name, 'my-operator');
  });

  const rejected: [string, Record<string, string>, RegExp][] = [
    ['an unknown value', { replica: '2' }, /additional properties 'replica' not allowed/],
    ['negative replicas', { 'operator.replicas': '-1' }, /operator\/replicas/],
    ['a port out of range', { 'metrics.port': '70000' }, /metrics\/port/],
    ['an unknown pull policy', { 'image.pullPolicy': 'Sometimes' }, /image\/pullPolicy/],
    ['running as root', { 'podSecurityContext.runAsNonRoot': 'false' }, /podSecurityContext\/runAsNonRoot/],
    ['a bad namespace name', { 'operator.watchNamespace': 'Team_A' }, /operator\/watchNamespace/],
    ['an unknown IP family', { ipFamilies: '{IPv5}' }, /ipFamilies\/0/],
    ['an IP family twice', { ipFamilies: '{IPv6,IPv6}' }, /ipFamilies/],
    [
      'replicas without leader election',
      { 'operator.replicas': '3', 'operator.leaderElection.enabled': 'false' },
      /operator\/leaderElection\/enabled/,
    ],
  ];
  for (const [name, values, where] of rejected) {
    test(`values.schema.json rejects ${name}`, async () => {
      const result = await helm(['template', 'edge', CHART, ...setArgs(values)]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /values don't meet the specifications of the schema/);
      assert.match(result.stderr, where);
    });
  }

  test('a ServiceMonitor without the metrics Service fails with a clear message', async () => {
    const result = await helm([
      'template',
      'edge',
      CHART,
      ...setArgs({ 'metrics.serviceMonitor.enabled': 'true', 'metrics.service.enabled': 'false' }),
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /metrics.serviceMonitor.enabled needs metrics.service.enabled/);
  });

  test('helm package ships crds/ itself (the link is followed) and not the unit test beside it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'voice-edge-chart-'));
    try {
      const packaged = await helm(['package', CHART, '--destination', out]);
      assert.equal(packaged.code, 0, packaged.stderr);
      const archive = join(out, `voice-edge-${APP_VERSION}.tgz`);
      const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout.split('\n');
      assert.deepEqual(listing.filter((f) => f.startsWith('voice-edge/crds/')).sort(), [
        'voice-edge/crds/transceiverpools.voice-edge.io.yaml',
        'voice-edge/crds/voiceedgeclusters.voice-edge.io.yaml',
      ]);
      for (const file of readdirSync(CRDS).filter((f) => f.endsWith('.yaml'))) {
        const inside = spawnSync('tar', ['-xzOf', archive, `voice-edge/crds/${file}`], { encoding: 'utf8' });
        assert.equal(
          inside.stdout,
          readFileSync(join(CRDS, file), 'utf8'),
          `${file} is the same in the package`,
        );
      }
      assert.ok(!listing.some((f) => f.endsWith('.test.ts')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('the rendered chart on the API server', () => {
  test('helm install: CRDs, operator Deployment, RBAC and NOTES', async () => {
    assert.match(installed.stdout, /STATUS: deployed/);
    assert.match(installed.stdout, /voice-edge operator 0\.1\.0 is installed in namespace voice-edge-helm/);
    assert.match(
      installed.stdout,
      /kubectl -n voice-edge-helm rollout status deployment\/voice-edge-operator/,
    );
    const deployment = await kubectl([
      'get',
      'deployment/voice-edge-operator',
      '-n',
      HELM_NAMESPACE,
      '-o',
      'json',
    ]);
    assert.equal(deployment.code, 0, deployment.stderr);
    assert.deepEqual(JSON.parse(deployment.stdout).spec.template.spec.containers[0].args, ['operator']);
    const rbac = await kubectl([
      'get',
      'clusterrole/voice-edge',
      'clusterrolebinding/voice-edge',
      '-o',
      'name',
    ]);
    assert.equal(rbac.code, 0, rbac.stderr);
  });

  test("upgrading the CRDs over Helm's install: server-side apply with --force-conflicts (docs/kubernetes.md)", async () => {
    // A changed CRD, as a newer release would bring: its changed fields are Helm's, so a plain
    // server-side apply conflicts and --force-conflicts takes them over.
    const original = readFileSync(join(CRDS, 'transceiverpools.voice-edge.io.yaml'), 'utf8');
    const changed = original.replace('shortNames: [tp, tpool]', 'shortNames: [tp, tpool, tpools]');
    assert.notEqual(changed, original);
    const plain = await kubectl(['apply', '--server-side', '-f', '-'], changed);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /conflicts? with "helm": \.spec\.names\.shortNames/);
    const forced = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], changed);
    assert.equal(forced.code, 0, forced.stderr);
    const names = await kubectl([
      'get',
      'crd/transceiverpools.voice-edge.io',
      '-o',
      'jsonpath={.spec.names.shortNames}',
    ]);
    assert.equal(names.stdout, '["tp","tpool","tpools"]');
    // Back to this release's CRDs (kubectl owns them now: no conflict).
    const restored = await kubectl(['apply', '--server-side', '-f', CRDS]);
    assert.equal(restored.code, 0, restored.stderr);
  });

  test('every value set passes a server-side dry run', async () => {
    const valueSets: Record<string, string>[] = [
      {},
      { 'operator.watchNamespace': 'team-a' },
      { 'operator.replicas': '2', 'exampleCluster.enabled': 'true' },
    ];
    for (const values of valueSets) {
      const result = await helm([
        'template',
        'edge',
        CHART,
        '--namespace',
        RELEASE_NAMESPACE,
        ...setArgs(values),
      ]);
      assert.equal(result.code, 0, result.stderr);
      // No -n: the rendered objects name their namespaces (the release's, and watchNamespace's Role).
      const applied = await kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], result.stdout);
      assert.equal(applied.code, 0, `${JSON.stringify(values)}: ${applied.stderr}`);
    }
  });

  test('the operator may do what the contract needs and nothing more (RBAC applied for real)', async () => {
    // Operator replicas 0: only RBAC and the ServiceAccount matter here.
    const manifests = await render({ 'operator.replicas': '0' });
    const applied = await kubectl(
      ['apply', '--server-side', '-n', RELEASE_NAMESPACE, '-f', '-'],
      manifests.map((m) => stringify(m)).join('---\n'),
    );
    assert.equal(applied.code, 0, applied.stderr);
    const account = `system:serviceaccount:${RELEASE_NAMESPACE}:${one(manifests, 'ServiceAccount').metadata.name}`;
    const can = async (verb: string, resource: string, namespace = 'edge', subresource?: string) => {
      const args = ['auth', 'can-i', verb, resource, '-n', namespace, '--as', account];
      if (subresource) args.push('--subresource', subresource);
      return (await kubectl(args)).stdout.trim() === 'yes';
    };
    for (const [verb, resource] of [
      ['watch', 'transceiverpools.voice-edge.io'],
      ['patch', 'voiceedgeclusters.voice-edge.io'],
      ['create', 'pods'],
      ['delete', 'pods'],
      ['update', 'configmaps'],
      ['create', 'services'],
      ['create', 'serviceaccounts'],
      ['create', 'deployments.apps'],
      ['create', 'poddisruptionbudgets.policy'],
      ['create', 'roles.rbac.authorization.k8s.io'],
      ['create', 'rolebindings.rbac.authorization.k8s.io'],
      ['create', 'events'],
      ['create', 'events.events.k8s.io'],
    ]) {
      assert.ok(await can(verb!, resource!), `may ${verb} ${resource}`);
    }
    assert.ok(await can('update', 'transceiverpools.voice-edge.io', 'edge', 'status'));
    assert.ok(
      await can('patch', 'transceiverpools.voice-edge.io', 'edge', 'scale'),
      'the autoscaler writes /scale',
    );
    assert.ok(await can('update', 'leases.coordination.k8s.io', RELEASE_NAMESPACE));
    assert.ok(await can('get', 'secrets'), 'reads the internal-API credential');
    assert.ok(await can('create', 'secrets'), 'creates the internal-API credential when missing');
    assert.ok(await can('patch', 'networkpolicies.networking.k8s.io'));
    assert.ok(await can('delete', 'networkpolicies.networking.k8s.io'));
    for (const [verb, resource, namespace] of [
      ['list', 'secrets', 'edge'],
      ['watch', 'secrets', 'edge'],
      ['update', 'secrets', 'edge'],
      ['patch', 'secrets', 'edge'],
      ['delete', 'secrets', 'edge'],
      ['list', 'secrets', RELEASE_NAMESPACE],
      ['create', 'voiceedgeclusters.voice-edge.io', 'edge'],
      ['delete', 'transceiverpools.voice-edge.io', 'edge'],
      ['update', 'pods', 'edge'],
      ['update', 'leases.coordination.k8s.io', 'edge'],
      ['create', 'clusterroles.rbac.authorization.k8s.io', 'edge'],
      ['bind', 'roles.rbac.authorization.k8s.io', 'edge'],
      ['escalate', 'roles.rbac.authorization.k8s.io', 'edge'],
      ['list', 'nodes', 'edge'],
    ]) {
      assert.ok(!(await can(verb!, resource!, namespace)), `may not ${verb} ${resource} in ${namespace}`);
    }

    // What the operator really creates (its own builders, for a cluster and pool read back from the
    // API server) is within its rights: applied for real as its ServiceAccount, twice (create, then update).
    const created = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      `${clusterYaml({}, 'rbac')}---\n${poolYaml({ clusterName: 'rbac' }, 'rbac')}`,
    );
    assert.equal(created.code, 0, created.stderr);
    const cluster = readVoiceEdgeCluster(
      JSON.parse((await kubectl(['get', 'vec/rbac', '-n', 'edge', '-o', 'json'])).stdout),
    );
    const pool = readTransceiverPool(
      JSON.parse((await kubectl(['get', 'tp/rbac', '-n', 'edge', '-o', 'json'])).stdout),
    );
    assert.ok(cluster.ok && pool.ok);
    const image = one(manifests, 'Deployment').spec.template.spec.containers[0].image;
    const input = {
      cluster: cluster.object,
      defaultImage: image,
      relayAddresses: ['203.0.113.10:3478'],
      apiTokensHash: '0123456789abcdef',
      operator: { namespace: RELEASE_NAMESPACE, podLabels: { 'app.kubernetes.io/component': 'operator' } },
    };
    const owned = [
      ...desiredClusterObjects(input),
      routingConfigMap(
        cluster.object,
        { clusterId: 7, generation: 1, transceivers: [], peers: [] },
        undefined,
      ),
      ledgerConfigMap(cluster.object, 1),
      transceiverPod({ ...input, pool: pool.object }, 1),
    ];
    assert.deepEqual([...new Set(owned.map((o) => o.kind))].sort(), [
      'ConfigMap',
      'Deployment',
      'NetworkPolicy',
      'Pod',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const asOperator = async (text: string, dryRunOnly = false) =>
      await kubectl(
        [
          'apply',
          '--server-side',
          ...(dryRunOnly ? ['--dry-run=server'] : []),
          '--field-manager=voice-edge-operator',
          '--as',
          account,
          '-n',
          'edge',
          '-f',
          '-',
        ],
        text,
      );
    for (let round = 0; round < 2; round++) {
      const ownedApplied = await asOperator(owned.map((o) => stringify(o)).join('---\n'));
      assert.equal(ownedApplied.code, 0, ownedApplied.stderr);
    }
    const deleted = await kubectl(['delete', 'pod', 'rbac-1', '-n', 'edge', '--as', account, '--wait=false']);
    assert.equal(deleted.code, 0, deleted.stderr);

    // The internal-API credential: created (POST) and read, never changed.
    const secret = stringify(transceiverApiSecret(cluster.object, newApiToken()));
    const createdSecret = await kubectl(['create', '--as', account, '-n', 'edge', '-f', '-'], secret);
    assert.equal(createdSecret.code, 0, createdSecret.stderr);
    const readSecret = await kubectl(['get', 'secret/rbac-transceiver-api', '-n', 'edge', '--as', account]);
    assert.equal(readSecret.code, 0, readSecret.stderr);
    const changedSecret = await asOperator(secret);
    assert.notEqual(changedSecret.code, 0, 'the operator cannot change a Secret');
    assert.match(changedSecret.stderr, /forbidden/);

    // Granting more than it holds is refused by RBAC's escalation check.
    const secretsReader = await asOperator(
      stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'rbac-secrets-reader', namespace: 'edge' },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }],
      }),
      true,
    );
    assert.notEqual(secretsReader.code, 0);
    assert.match(secretsReader.stderr, /attempting to grant RBAC permissions not currently held/);
  });
});

describe('the CRDs on the API server', () => {
  test('the examples are accepted', async () => {
    for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'))) {
      const documents = parseManifests(readFileSync(join(EXAMPLES, file), 'utf8'));
      // KEDA's ScaledObject needs KEDA's CRDs, which this API server does not have: check its target.
      const keda = documents.filter((d) => d.apiVersion === 'keda.sh/v1alpha1');
      for (const scaledObject of keda) {
        const target = scaledObject.spec.scaleTargetRef;
        assert.equal(target.apiVersion, 'voice-edge.io/v1alpha1');
        assert.equal(target.kind, 'TransceiverPool');
        assert.ok(documents.some((d) => d.kind === 'TransceiverPool' && d.metadata.name === target.name));
      }
      const rest = documents.filter((d) => !keda.includes(d));
      const applied = await dryRun(rest.map((d) => stringify(d)).join('---\n'));
      assert.equal(applied.code, 0, `${file}: ${applied.stderr}`);
    }
  });

  const invalid: [string, string, RegExp][] = [
    [
      'minReplicas > maxReplicas',
      poolYaml({ autoscaling: { minReplicas: 5, maxReplicas: 2 } }),
      /autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas/,
    ],
    [
      'a backend URL that is not ws(s)',
      poolYaml({ backend: { url: 'http://agent:8081/' } }),
      /ws:\/\/ or wss:\/\//,
    ],
    ['a backend URL without a host', poolYaml({ backend: { url: 'ws:///path' } }), /ws:\/\/ or wss:\/\//],
    [
      'a sample rate Opus does not have',
      poolYaml({ backend: { url: 'ws://a/', sampleRate: 44100 } }),
      /44100/,
    ],
    [
      'a sample rate other than 8000 with twilio-media-streams',
      poolYaml({ backend: { url: 'ws://a/', protocol: 'twilio-media-streams', sampleRate: 16000 } }),
      /backend.sampleRate must be 8000 or left out with protocol twilio-media-streams/,
    ],
    [
      'a backend protocol voice-edge does not speak',
      poolYaml({ backend: { url: 'ws://a/', protocol: 'twilio' } }),
      /Unsupported value: "twilio"/,
    ],
    [
      'an accountSid that is not AC and 32 hex digits',
      poolYaml({
        backend: { url: 'ws://a/', protocol: 'twilio-media-streams', accountSid: `AC${'A'.repeat(32)}` },
      }),
      /backend.accountSid/,
    ],
    [
      'an Opus complexity libopus does not have',
      poolYaml({ backend: { url: 'ws://a/' }, audio: { opusComplexity: 11 } }),
      /opusComplexity/,
    ],
    [
      'an env variable the operator sets',
      poolYaml({ template: { env: [{ name: 'VOICE_EDGE_TRANSCEIVER_CLUSTER_ID', value: '3' }] } }),
      /template.env must not set a variable the operator sets/,
    ],
    [
      'a label the operator sets',
      poolYaml({ template: { labels: { 'voice-edge.io/pool': 'other' } } }),
      /template.labels must not set the labels the operator sets/,
    ],
    ['a pool name too long for its pods', poolYaml({}, 'p'.repeat(53)), /at most 52 characters/],
    ['a cluster name that is not a DNS-1035 label', clusterYaml({}, '1edge'), /DNS-1035 label/],
    ['a clusterId above 65535', clusterYaml({ clusterId: 70000 }), /clusterId/],
    [
      'peers containing this cluster',
      clusterYaml({ peers: [{ clusterId: 7, relays: ['10.0.0.1:3478'] }] }),
      /peers must not include this cluster's own clusterId/,
    ],
    [
      'the same peer twice',
      clusterYaml({
        peers: [
          { clusterId: 8, relays: ['10.0.0.1:3478'] },
          { clusterId: 8, relays: ['10.0.0.2:3478'] },
        ],
      }),
      /duplicate entries for key \[clusterId=8\]/,
    ],
    ['a peer without relays', clusterYaml({ peers: [{ clusterId: 8, relays: [] }] }), /relays/],
    [
      'a metricsFrom peer without selectors',
      clusterYaml({ networkPolicy: { metricsFrom: [{}] } }),
      /a metricsFrom peer needs a namespaceSelector or a podSelector/,
    ],
    [
      'a selector operator NetworkPolicy does not have',
      clusterYaml({
        networkPolicy: {
          metricsFrom: [{ podSelector: { matchExpressions: [{ key: 'a', operator: 'Maybe' }] } }],
        },
      }),
      /Unsupported value: "Maybe"/,
    ],
    [
      'a credential Secret name that is not a DNS subdomain',
      clusterYaml({ transceiverApi: { secretName: 'Not_A_Name' } }),
      /transceiverApi.secretName/,
    ],
    [
      'an edge relay that is neither an IP nor a CIDR',
      clusterYaml({ edgeRelays: ['198.51.100.0/33'] }),
      /must be an IP address or a CIDR range/,
    ],
    [
      'a relay nodePort out of range',
      clusterYaml({ relay: { serviceType: 'NodePort', nodePort: 8080 } }),
      /nodePort must be in the Kubernetes NodePort range 30000-32767/,
    ],
    [
      'a signaling nodePort with a ClusterIP Service',
      clusterYaml({ signaling: { serviceType: 'ClusterIP', nodePort: 30080 } }),
      /signaling.nodePort needs serviceType NodePort or LoadBalancer/,
    ],
    [
      'a relay ICE-TCP nodePort out of range',
      clusterYaml({ relay: { serviceType: 'NodePort', tcp: { nodePort: 443 } } }),
      /relay.tcp.nodePort/,
    ],
    ['a relay ICE-TCP port of 0', clusterYaml({ relay: { tcp: { port: 0 } } }), /relay.tcp.port/],
    ['signaling on its ops port', clusterYaml({ signaling: { port: 9091 } }), /must not be 9091/],
    ['a relay port of 0', clusterYaml({ relay: { port: 0 } }), /relay.port/],
    [
      'an unknown IP family',
      clusterYaml({ ipFamilies: ['IPv5'] }),
      /spec.ipFamilies\[0\]: Unsupported value: "IPv5"/,
    ],
    [
      'an IP family twice',
      clusterYaml({ ipFamilies: ['IPv6', 'IPv6'] }),
      /spec.ipFamilies: duplicate entries for key \[="IPv6"\]/,
    ],
    ['no IP family', clusterYaml({ ipFamilies: [] }), /spec.ipFamilies/],
    ['a Redis URL of another scheme', clusterYaml({ redis: { url: 'http://redis:6379' } }), /redis:\/\//],
    [
      'a relay service type signaling-only',
      clusterYaml({ relay: { serviceType: 'ClusterIP' } }),
      /ClusterIP/,
    ],
  ];
  for (const address of [
    '1.2.3.4',
    '1.2.3.4:',
    '1.2.3.4:0',
    '1.2.3.4:65536',
    '256.1.1.1:3478',
    '01.2.3.4:3478',
    'localhost:3478',
    '[1.2.3.4]:3478',
    '[::1]',
    '::1:3478',
    '[fe80::1%eth0]:3478',
    '[::ffff:1.2.3.4]:3478',
  ]) {
    invalid.push([
      `the address ${address}`,
      clusterYaml({ relay: { publicAddresses: [address] } }),
      /must be an address "ip:port": IPv4 a.b.c.d:port or \[IPv6\]:port, port 1-65535/,
    ]);
  }
  invalid.push([
    'a bad peer relay address',
    clusterYaml({ peers: [{ clusterId: 9, relays: ['example.com:3478'] }] }),
    /spec.peers\[0\].relays\[0\]: Invalid value: "example.com:3478": must be an address "ip:port"/,
  ]);

  for (const [name, text, message] of invalid) {
    test(`rejects ${name}`, async () => {
      const result = await dryRun(text);
      assert.notEqual(result.code, 0, `${name} was accepted`);
      assert.match(result.stderr, message);
    });
  }

  test('accepts IPv4 and IPv6 addresses with ports 1-65535', async () => {
    const result = await dryRun(
      clusterYaml({
        relay: { publicAddresses: ['203.0.113.10:3478', '[2001:db8::10]:3478', '[::1]:1', '10.0.0.1:65535'] },
        peers: [{ clusterId: 8, region: 'us-east', relays: ['198.51.100.20:3478', '[2001:db8::20]:443'] }],
        edgeRelays: ['198.51.100.7', '198.51.100.0/24', '2001:db8::/48'],
        redis: { url: 'rediss://redis.example:6380/0' },
        signaling: { serviceType: 'NodePort', nodePort: 30080 },
      }),
    );
    assert.equal(result.code, 0, result.stderr);
    for (const ipFamilies of [['IPv4'], ['IPv6'], ['IPv6', 'IPv4']]) {
      const families = await dryRun(clusterYaml({ ipFamilies }));
      assert.equal(families.code, 0, families.stderr);
    }
  });

  test('accepts a twilio-media-streams pool with sampleRate 8000 or none, and an accountSid', async () => {
    for (const backend of [
      { url: 'wss://bot.example/ws', protocol: 'twilio-media-streams' },
      { url: 'wss://bot.example/ws', protocol: 'twilio-media-streams', sampleRate: 8000 },
      { url: 'wss://bot.example/ws', protocol: 'twilio-media-streams', accountSid: `AC${'0a'.repeat(16)}` },
    ]) {
      const result = await dryRun(poolYaml({ backend }, 'twilio'));
      assert.equal(result.code, 0, `${JSON.stringify(backend)}: ${result.stderr}`);
    }
  });

  test('defaults are filled in on create', async () => {
    const created = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      `${clusterYaml({}, 'defaults')}---\n${poolYaml({ clusterName: 'defaults' }, 'defaults')}`,
    );
    assert.equal(created.code, 0, created.stderr);
    const cluster = JSON.parse((await kubectl(['get', 'vec/defaults', '-n', 'edge', '-o', 'json'])).stdout);
    assert.deepEqual(cluster.spec, {
      clusterId: 7,
      routingKeys: { secretName: 'keys', key: 'keys.yaml' },
      relay: { replicas: 2, port: 3478, serviceType: 'LoadBalancer', tcp: { enabled: true, port: 443 } },
      signaling: { replicas: 2, port: 8080, serviceType: 'ClusterIP' },
      transceiverApi: {},
      networkPolicy: { enabled: true },
    });
    const pool = JSON.parse((await kubectl(['get', 'tp/defaults', '-n', 'edge', '-o', 'json'])).stdout);
    assert.deepEqual(pool.spec, {
      clusterName: 'defaults',
      replicas: 1,
      capacityPerPod: 50,
      // No sampleRate: its default depends on the protocol, so the operator fills it in (48000).
      backend: { url: 'ws://agent:8081/', protocol: 'voice-edge' },
      // No opusComplexity: its default depends on the application, so the operator fills it in.
      audio: { opusApplication: 'restricted-lowdelay', maxQueueSeconds: 20, callerDtx: true },
      autoscaling: {
        enabled: false,
        minReplicas: 1,
        maxReplicas: 10,
        targetUtilizationPercent: 70,
        scaleDownStabilizationSeconds: 300,
      },
      drainTimeoutSeconds: 3600,
    });
    const read = readTransceiverPool(pool);
    assert.ok(read.ok);
    assert.equal(read.object.spec.backend.sampleRate, 48000);
  });

  test('clusterId and clusterName cannot change', async () => {
    const created = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      `${clusterYaml({}, 'fixed')}---\n${poolYaml({ clusterName: 'fixed' }, 'fixed')}`,
    );
    assert.equal(created.code, 0, created.stderr);
    const clusterId = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      clusterYaml({ clusterId: 8 }, 'fixed'),
    );
    assert.notEqual(clusterId.code, 0);
    assert.match(clusterId.stderr, /clusterId is immutable/);
    const clusterName = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      poolYaml({ clusterName: 'other' }, 'fixed'),
    );
    assert.notEqual(clusterName.code, 0);
    assert.match(clusterName.stderr, /clusterName is immutable/);
    // Other fields still change.
    const replicas = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      clusterYaml({ relay: { replicas: 3 } }, 'fixed'),
    );
    assert.equal(replicas.code, 0, replicas.stderr);
  });

  test('kubectl explain shows the descriptions', async () => {
    // The API server publishes a new CRD's OpenAPI a moment after it is established.
    let explained: CommandResult = { code: 1, stdout: '', stderr: '' };
    await waitUntil(
      async () => {
        explained = await kubectl(['explain', 'voiceedgecluster.spec.relay']);
        return explained.code === 0;
      },
      30_000,
      'kubectl explain voiceedgecluster.spec.relay',
    );
    assert.match(explained.stdout, /The stateless UDP relay tier/);
    assert.match(explained.stdout, /publicAddresses/);
    assert.match(explained.stdout, /The addresses SDP answers advertise/);
    const pool = await kubectl(['explain', 'tp.spec.autoscaling.scaleDownStabilizationSeconds']);
    assert.equal(pool.code, 0, pool.stderr);
    assert.match(pool.stdout, /How long the load must stay low before the autoscaler scales down/);
  });

  test('the scale subresource reads and writes spec.replicas and reports status.replicas and status.selector', async () => {
    const created = await kubectl(
      ['apply', '--server-side', '-n', 'edge', '-f', '-'],
      poolYaml({}, 'scaled'),
    );
    assert.equal(created.code, 0, created.stderr);
    const scaled = await kubectl(['scale', 'tp/scaled', '-n', 'edge', '--replicas', '3']);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.equal(
      JSON.parse((await kubectl(['get', 'tp/scaled', '-n', 'edge', '-o', 'json'])).stdout).spec.replicas,
      3,
    );

    const status = await kubectl([
      'patch',
      'tp/scaled',
      '-n',
      'edge',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          replicas: 2,
          readyReplicas: 1,
          drainingReplicas: 1,
          sessions: 40,
          capacity: 100,
          selector: 'a=b',
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'PodsNotReady',
              message: '1 of 2 transceivers ready',
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          ],
        },
      }),
    ]);
    assert.equal(status.code, 0, status.stderr);
    const scale = JSON.parse(
      (await kubectl(['get', 'tp/scaled', '-n', 'edge', '--subresource=scale', '-o', 'json'])).stdout,
    );
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.spec.replicas, 3);
    assert.equal(scale.status.replicas, 2);
    assert.equal(scale.status.selector, 'a=b');

    // Scale writes are validated like any other write.
    const negative = await kubectl(['scale', 'tp/scaled', '-n', 'edge', '--replicas', '-1']);
    assert.notEqual(negative.code, 0);
  });

  test('printer columns, short names and the voice-edge category', async () => {
    const pools = await kubectl(['get', 'tpool', '-n', 'edge', 'scaled', '-o', 'wide']);
    assert.equal(pools.code, 0, pools.stderr);
    const [header, row] = pools.stdout.trim().split('\n');
    assert.deepEqual(header!.split(/\s+/), [
      'NAME',
      'CLUSTER',
      'PROTOCOL',
      'DESIRED',
      'REPLICAS',
      'READY',
      'DRAINING',
      'SESSIONS',
      'CAPACITY',
      'STATUS',
      'AGE',
    ]);
    assert.match(row!, /^scaled\s+edge\s+voice-edge\s+3\s+2\s+1\s+1\s+40\s+100\s+False\s+\S+$/);
    const clusters = await kubectl(['get', 'vec', '-n', 'edge', 'fixed']);
    assert.equal(clusters.code, 0, clusters.stderr);
    assert.deepEqual(clusters.stdout.split('\n')[0]!.split(/\s+/), [
      'NAME',
      'CLUSTERID',
      'REGION',
      'READY',
      'TRANSCEIVERS',
      'AGE',
    ]);
    const all = await kubectl(['get', 'voice-edge', '-n', 'edge', '-o', 'name']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /voiceedgecluster.voice-edge.io\/fixed/);
    assert.match(all.stdout, /transceiverpool.voice-edge.io\/scaled/);
    const selected = await kubectl([
      'get',
      'tp',
      '-n',
      'edge',
      '--field-selector',
      'spec.clusterName=fixed',
      '-o',
      'name',
    ]);
    assert.equal(selected.code, 0, selected.stderr);
    assert.equal(selected.stdout.trim(), 'transceiverpool.voice-edge.io/fixed');
  });
});
