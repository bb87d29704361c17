import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { expandVariables } from './env-expansion.ts';
import { ContainerConfigError, type EnvSources, resolveContainerLaunch } from './pod-env.ts';

describe('expandVariables (the kubelet’s $(VAR) rules)', () => {
  const vars: Record<string, string> = { A: 'alpha', EMPTY: '' };
  const lookup = (name: string) => vars[name];
  const cases: Array<[string, string]> = [
    ['$(A)', 'alpha'],
    ['x-$(A)-y', 'x-alpha-y'],
    ['$(A)$(A)', 'alphaalpha'],
    ['$(EMPTY)|', '|'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$alpha'],
    ['$$', '$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['100$', '100$'],
    ['$()', '$()'],
    ['', ''],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(expandVariables(input, lookup), expected);
    });
  }
});

describe('resolveContainerLaunch', () => {
  const pod: V1Pod = {
    metadata: {
      name: 'web-1',
      namespace: 'ns1',
      uid: 'u-1',
      labels: { app: 'web', tier: 'edge' },
      annotations: { note: 'a "b"' },
    },
    spec: { nodeName: 'node-a', serviceAccountName: 'sa1', containers: [] },
  };
  const facts = { podIP: '10.88.0.7', hostIP: '10.88.0.1', nodeCapacity: { cpu: '2', memory: '8Gi' } };
  const sources: EnvSources = {
    async secret(namespace, name) {
      return namespace === 'ns1' && name === 'keys' ? { 'keys.yaml': 'k: 1', other: 'o' } : undefined;
    },
    async configMap(namespace, name) {
      return namespace === 'ns1' && name === 'settings' ? { mode: 'fast', port: '9000' } : undefined;
    },
  };
  const launch = (container: Partial<V1Container>) =>
    resolveContainerLaunch(pod, { name: 'c', ...container }, facts, sources);

  test('values, fieldRefs, secretKeyRef, configMapKeyRef and $(VAR) against earlier variables only', async () => {
    const result = await launch({
      env: [
        { name: 'LATE_REF', value: '$(POD_IP)' },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'LISTEN', value: '$(POD_IP):7000' },
        { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
        { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
        { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
        { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: 'LABELS', valueFrom: { fieldRef: { fieldPath: 'metadata.labels' } } },
        { name: 'KEYS', valueFrom: { secretKeyRef: { name: 'keys', key: 'keys.yaml' } } },
        { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
        { name: 'ESCAPED', value: '$$(POD_IP)' },
        { name: 'EMPTY' },
        { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
      ],
      args: ['relay', '--listen=$(LISTEN)', '$(NOPE)'],
    });
    assert.deepEqual(result.env, {
      LATE_REF: '$(POD_IP)',
      POD_IP: '10.88.0.7',
      LISTEN: '10.88.0.7:7000',
      NAME: 'web-1',
      NS: 'ns1',
      UID: 'u-1',
      NODE: 'node-a',
      SA: 'sa1',
      HOST: '10.88.0.1',
      APP: 'web',
      LABELS: 'app="web"\ntier="edge"',
      KEYS: 'k: 1',
      MODE: 'fast',
      ESCAPED: '$(POD_IP)',
      EMPTY: '',
      CPU: '2',
    });
    assert.deepEqual(result.args, ['relay', '--listen=10.88.0.7:7000', '$(NOPE)']);
    assert.equal(result.command, undefined);
  });

  test('envFrom with a prefix, overridden by env', async () => {
    const result = await launch({
      envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }, { secretRef: { name: 'keys' } }],
      env: [{ name: 'CFG_MODE', value: 'slow' }],
    });
    assert.deepEqual(result.env, {
      CFG_mode: 'fast',
      CFG_port: '9000',
      'keys.yaml': 'k: 1',
      other: 'o',
      CFG_MODE: 'slow',
    });
  });

  test('optional references that do not resolve leave the variable unset', async () => {
    const result = await launch({
      envFrom: [{ secretRef: { name: 'absent', optional: true } }],
      env: [
        { name: 'A', valueFrom: { secretKeyRef: { name: 'absent', key: 'x', optional: true } } },
        { name: 'B', valueFrom: { secretKeyRef: { name: 'keys', key: 'absent', optional: true } } },
        { name: 'C', valueFrom: { configMapKeyRef: { name: 'absent', key: 'x', optional: true } } },
      ],
    });
    assert.deepEqual(result.env, {});
  });

  test('a required reference that does not resolve is a CreateContainerConfigError naming it', async () => {
    await assert.rejects(
      launch({ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'absent', key: 'x' } } }] }),
      (error: unknown) =>
        error instanceof ContainerConfigError && /secret "absent" not found/.test(error.message),
    );
    await assert.rejects(
      launch({ env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'settings', key: 'nope' } } }] }),
      /couldn't find key nope in ConfigMap ns1\/settings/,
    );
    await assert.rejects(
      launch({ env: [{ name: 'A', valueFrom: { fieldRef: { fieldPath: 'status.phase' } } }] }),
      /unsupported fieldRef fieldPath status.phase/,
    );
  });
});
