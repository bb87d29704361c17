// Unit-level checks that need no API server; the real one is in
// test/integration/kubernetes-routing-source.test.ts.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from '../kube/client.ts';
import { describeKubernetesError, KubernetesRoutingSource } from './kubernetes-routing-source.ts';

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function kubeConfigFor(server: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'not-a-real-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
}

describe('describeKubernetesError', () => {
  test('an API answer: status and the Status message; 403 says which permission is missing', () => {
    const path = '/api/v1/namespaces/edge/configmaps';
    const message = 'configmaps is forbidden: User "x" cannot list';
    assert.equal(
      describeKubernetesError(new KubeApiError('GET', path, 403, 'Forbidden', message)),
      'HTTP 403: configmaps is forbidden: User "x" cannot list (the ServiceAccount needs get/list/watch on configmaps)',
    );
    assert.equal(
      describeKubernetesError(new KubeApiError('GET', path, 500, undefined, undefined, 'not json')),
      'HTTP 500',
    );
    assert.equal(describeKubernetesError(new KubeApiError('GET', path, 410, 'Gone', undefined)), 'HTTP 410');
  });

  test('a transport failure: the message and its cause', () => {
    const error = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') });
    assert.equal(describeKubernetesError(error), 'fetch failed: connect ECONNREFUSED 127.0.0.1:1');
    assert.equal(describeKubernetesError('odd'), 'odd');
  });
});

describe('KubernetesRoutingSource without an API server', () => {
  test('start() keeps retrying, then rejects naming the API server and what failed', async () => {
    const server = `https://127.0.0.1:${await closedPort()}`;
    const restarts: string[] = [];
    const source = new KubernetesRoutingSource({
      name: 'vec-routing',
      namespace: 'edge',
      kubeConfig: kubeConfigFor(server),
      startTimeoutMs: 1_000,
      backoff: { initialMs: 50, maxMs: 200 },
      onWatchRestart: (reason) => restarts.push(reason),
    });
    const invalid: string[] = [];
    await assert.rejects(
      source.start({ onTable: () => assert.fail('no table'), onInvalid: (error) => invalid.push(error) }),
      (error: Error) => {
        assert.equal(
          error.message,
          `no valid routing table ConfigMap edge/vec-routing within 1 s (namespace edge, API server ${server}): ` +
            `API server ${server}: connect ECONNREFUSED ${server.slice('https://'.length)}`,
        );
        return true;
      },
    );
    await source.closed();
    assert.deepEqual(invalid, [], 'an unreachable API server is not an invalid table');
    assert.ok(
      restarts.length >= 3 && restarts.every((reason) => reason === 'error'),
      JSON.stringify(restarts),
    );
    // Backoff: 50 ms doubling to 200 ms (jitter ≥ half) allows at most ~12 attempts in 1 s.
    assert.ok(restarts.length <= 15, `${restarts.length} attempts in 1 s`);
    assert.equal(source.restarts, restarts.length);
  });

  test('close() while start() waits rejects it at once', async () => {
    const source = new KubernetesRoutingSource({
      name: 'r',
      namespace: 'n',
      kubeConfig: kubeConfigFor(`https://127.0.0.1:${await closedPort()}`),
      startTimeoutMs: 60_000,
    });
    const started = performance.now();
    const pending = source.start({ onTable: () => {}, onInvalid: () => {} });
    setTimeout(() => source.close(), 100);
    await assert.rejects(
      pending,
      /^Error: routing table ConfigMap n\/r: closed before a valid table arrived$/,
    );
    await source.closed();
    assert.ok(performance.now() - started < 5_000);
  });

  test('start() twice is refused', async () => {
    const source = new KubernetesRoutingSource({
      name: 'r',
      namespace: 'n',
      kubeConfig: kubeConfigFor(`https://127.0.0.1:${await closedPort()}`),
      startTimeoutMs: 300,
    });
    const listener = { onTable: () => {}, onInvalid: () => {} };
    const first = source.start(listener);
    await assert.rejects(source.start(listener), /already started/);
    await assert.rejects(first, /within 0\.3 s/);
    await source.closed();
  });
});
