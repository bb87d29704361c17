// KubernetesRoutingSource against a real kube-apiserver (test/kube/control-plane.ts): the first
// table, updates and their latency, invalid tables, deletion, an API server outage, start-up
// timeouts; and a relay process that forwards by a table it reads from the API server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import type { RoutingTable } from '../../protocol/routing-table.ts';
import { decodeTunnelPacket } from '../../protocol/tunnel.ts';
import { ROUTING_TABLE_KEY } from '../../routing/config-map-table.ts';
import { KubernetesRoutingSource, type WatchRestartReason } from '../../routing/kubernetes-routing-source.ts';
import { type ControlPlane, startControlPlane } from '../kube/control-plane.ts';
import { bindingRequest } from '../support/ice.ts';
import { freeTcpPort, freeUdpPort, UdpEndpoint } from '../support/net.ts';
import { credentialsFor, RelayFixture, RelayProcess } from '../support/relay-process.ts';

const NAMESPACE = 'routing-test';
const CLUSTER = 3;

/** A routing table document as the operator publishes it (serializeRoutingTable's JSON). */
function tableJson(generation: number, transceivers: { id: number; tunnel: string }[] = []): string {
  return JSON.stringify({
    clusterId: CLUSTER,
    generation,
    transceivers: transceivers.map((entry) => ({ ...entry, state: 'active' })),
    peers: [],
  });
}

/** What a listener saw, with when it saw it. */
class Recorder {
  readonly tables: { table: RoutingTable; at: number }[] = [];
  readonly invalid: { error: string; at: number }[] = [];
  readonly restarts: WatchRestartReason[] = [];
  readonly listener = {
    onTable: (table: RoutingTable) => this.tables.push({ table, at: performance.now() }),
    onInvalid: (error: string) => this.invalid.push({ error, at: performance.now() }),
  };

  async waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; tables ${JSON.stringify(this.tables.map((t) => t.table.generation))}, ` +
            `invalid ${JSON.stringify(this.invalid.map((i) => i.error))}, restarts ${JSON.stringify(this.restarts)}`,
        );
      }
      await sleep(10);
    }
  }

  generation(generation: number) {
    return this.waitFor(`generation ${generation}`, () =>
      this.tables.find((entry) => entry.table.generation === generation),
    );
  }

  invalidMatching(pattern: RegExp, after = 0) {
    return this.waitFor(`onInvalid ${pattern}`, () =>
      this.invalid.find((entry) => entry.at >= after && pattern.test(entry.error)),
    );
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// One control plane (etcd and kube-apiserver only) for the whole file.
let cp: ControlPlane;
let kubeConfig: KubeConfig;
let api: CoreV1Api;
before(async () => {
  cp = await startControlPlane({ components: [] });
  kubeConfig = cp.kubeConfig();
  api = kubeConfig.makeApiClient(CoreV1Api);
  await api.createNamespace({ body: { metadata: { name: NAMESPACE } } });
});
after(() => cp?.stop());

describe('KubernetesRoutingSource against a real kube-apiserver', { timeout: 600_000 }, () => {
  const sources: KubernetesRoutingSource[] = [];
  const logger = pino({ level: process.env.VOICE_EDGE_TEST_LOG ?? 'silent' });

  const put = async (name: string, data: Record<string, string>) => {
    const body = { metadata: { name, namespace: NAMESPACE }, data };
    try {
      await api.replaceNamespacedConfigMap({ name, namespace: NAMESPACE, body });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      await api.createNamespacedConfigMap({ namespace: NAMESPACE, body });
    }
  };
  const remove = (name: string) => api.deleteNamespacedConfigMap({ name, namespace: NAMESPACE });
  const source = (name: string, recorder: Recorder, options: { startTimeoutMs?: number } = {}) => {
    const created = new KubernetesRoutingSource({
      name,
      namespace: NAMESPACE,
      kubeConfig,
      logger,
      backoff: { initialMs: 100, maxMs: 1_000 },
      onWatchRestart: (reason) => recorder.restarts.push(reason),
      ...options,
    });
    sources.push(created);
    return created;
  };

  after(async () => {
    for (const created of sources) created.close();
    await Promise.all(sources.map((created) => created.closed()));
  });

  test('the first table, then updates as they are written (latency printed)', async () => {
    await put('updates', { [ROUTING_TABLE_KEY]: tableJson(1) });
    const recorder = new Recorder();
    const routing = source('updates', recorder);
    const first = await routing.start(recorder.listener);
    assert.equal(first.table.generation, 1);
    assert.equal(first.table.clusterId, CLUSTER);
    assert.equal(recorder.tables.length, 0, 'the first table is start()’s, not onTable’s');

    const latencies: number[] = [];
    for (let generation = 2; generation <= 11; generation++) {
      const written = performance.now();
      await put('updates', {
        [ROUTING_TABLE_KEY]: tableJson(generation, [
          { id: generation, tunnel: `10.88.0.${generation}:7000` },
        ]),
      });
      const delivered = await recorder.generation(generation);
      latencies.push(delivered.at - written);
      assert.equal(delivered.table.transceivers[0]?.id, generation);
    }
    assert.deepEqual(
      recorder.tables.map((entry) => entry.table.generation),
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      'each update once, in order',
    );
    console.log(
      `ConfigMap update → onTable latency over ${latencies.length} updates (write request included): ` +
        `median ${median(latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
    );
    assert.ok(
      Math.max(...latencies) < 5_000,
      `latencies ${latencies.map((l) => l.toFixed(0)).join(', ')} ms`,
    );
  });

  test('an invalid table is reported and the last good one stays; a fix is delivered', async () => {
    await put('invalid', { [ROUTING_TABLE_KEY]: tableJson(1) });
    const recorder = new Recorder();
    const routing = source('invalid', recorder);
    await routing.start(recorder.listener);

    await put('invalid', { [ROUTING_TABLE_KEY]: '{"clusterId": 3, "transceivers": [{"id": -1}]}' });
    const bad = await recorder.invalidMatching(/routing\.json\): .*transceivers\.0/);
    assert.match(bad.error, /^routing table ConfigMap routing-test\/invalid \(routing\.json\): /);
    await put('invalid', { [ROUTING_TABLE_KEY]: '{ not json' });
    await recorder.invalidMatching(/not valid YAML\/JSON/);
    await put('invalid', { other: 'x' });
    await recorder.invalidMatching(/has no data key routing\.json/);
    assert.equal(recorder.tables.length, 0, 'no table delivered while invalid');

    await put('invalid', { [ROUTING_TABLE_KEY]: tableJson(2) });
    await recorder.generation(2);
    assert.equal(recorder.invalid.length, 3, 'each problem reported once');
  });

  test('start() waits for the ConfigMap to be created', async () => {
    const recorder = new Recorder();
    const routing = source('late', recorder);
    const started = routing.start(recorder.listener);
    let resolved = false;
    void started.then(() => {
      resolved = true;
    });
    await sleep(1_500);
    assert.equal(resolved, false, 'no table yet');
    await put('late', { [ROUTING_TABLE_KEY]: tableJson(4) });
    assert.equal((await started).table.generation, 4);
  });

  test('deleted: reported, the last table stays; recreated: its table is delivered', async () => {
    await put('deleted', { [ROUTING_TABLE_KEY]: tableJson(1) });
    const recorder = new Recorder();
    const routing = source('deleted', recorder);
    await routing.start(recorder.listener);

    await remove('deleted');
    const deleted = await recorder.invalidMatching(/deleted/);
    assert.equal(
      deleted.error,
      'routing table ConfigMap routing-test/deleted was deleted; keeping the last table',
    );
    await put('deleted', { [ROUTING_TABLE_KEY]: tableJson(1) });
    await put('deleted', { [ROUTING_TABLE_KEY]: tableJson(2) });
    await recorder.generation(2);
    assert.deepEqual(
      recorder.tables.map((entry) => entry.table.generation),
      [2],
      'recreating it with the table in force delivers nothing new',
    );
  });

  test('start() rejects with a clear error when the ConfigMap never appears', async () => {
    const recorder = new Recorder();
    const routing = source('absent', recorder, { startTimeoutMs: 1_500 });
    const started = performance.now();
    await assert.rejects(routing.start(recorder.listener), (error: Error) => {
      assert.match(
        error.message,
        /^no valid routing table ConfigMap routing-test\/absent within 1\.5 s \(namespace routing-test, API server https:\/\/127\.0\.0\.1:\d+\): routing table ConfigMap routing-test\/absent does not exist$/,
      );
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1_400 && elapsed < 5_000, `${elapsed} ms`);
    await routing.closed();
  });

  test('API server down: the last table stays, retries back off; back up: updates flow again', async () => {
    await put('outage', { [ROUTING_TABLE_KEY]: tableJson(1) });
    const recorder = new Recorder();
    const routing = source('outage', recorder);
    await routing.start(recorder.listener);

    const stoppedAt = performance.now();
    await cp.stopApiServer();
    await recorder.waitFor('two failed attempts', () =>
      recorder.restarts.filter((reason) => reason === 'error').length >= 2 ? true : undefined,
    );
    await sleep(2_000);
    const failures = recorder.restarts.filter((reason) => reason === 'error').length;
    const downMs = performance.now() - stoppedAt;
    // With 100 ms doubling to 1 s (jitter ≥ half), a retry loop without backoff would make hundreds.
    assert.ok(failures <= Math.ceil(downMs / 500) + 4, `${failures} attempts in ${downMs.toFixed(0)} ms`);
    assert.equal(recorder.invalid.length, 0, 'an outage is not an invalid table');
    assert.equal(recorder.tables.length, 0);

    const restartedAt = performance.now();
    await cp.startApiServer();
    const upMs = performance.now() - restartedAt;
    const written = performance.now();
    await put('outage', { [ROUTING_TABLE_KEY]: tableJson(2) });
    const delivered = await recorder.generation(2);
    console.log(
      `API server outage: ${failures} failed attempts in ${(downMs / 1000).toFixed(1)} s; API server ready again in ` +
        `${(upMs / 1000).toFixed(1)} s; first update after it delivered in ${(delivered.at - written).toFixed(0)} ms; ` +
        `restarts by reason ${JSON.stringify(countBy(recorder.restarts))}`,
    );
    assert.equal(recorder.invalid.length, 0);
  });
});

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

describe('a relay process with routingTable.configMap', { timeout: 600_000 }, () => {
  test('forwards by the table it reads from the API server, and follows its updates', async () => {
    const [first, second] = await Promise.all([UdpEndpoint.open(), UdpEndpoint.open()]);
    const table = (generation: number, port: number) =>
      tableJson(generation, [{ id: 21, tunnel: `127.0.0.1:${port}` }]);
    await api.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'relay-routing' },
        data: { [ROUTING_TABLE_KEY]: table(1, first!.address.port) },
      },
    });
    const relayPort = await freeUdpPort();
    const fixture = new RelayFixture({
      clusterId: CLUSTER,
      httpPort: await freeTcpPort(),
      listen: [`127.0.0.1:${relayPort}`],
      routing: 'unused: the relay reads the ConfigMap',
      config: { routingTable: { configMap: { name: 'relay-routing' } } },
    });
    // As in a pod: the namespace from POD_NAMESPACE, the API server from KUBECONFIG.
    const relay = await RelayProcess.start(fixture, {
      KUBECONFIG: cp.kubeconfigPath,
      POD_NAMESPACE: NAMESPACE,
    });
    const clients: UdpEndpoint[] = [];
    try {
      assert.equal(await relay.value('voice_edge_relay_routing_table_generation'), 1);
      const send = async () => {
        const client = await UdpEndpoint.open();
        clients.push(client);
        const credentials = credentialsFor(fixture.keyring.keyring, CLUSTER, 21);
        await client.send(bindingRequest(credentials.ufrag, credentials.password), relayPort, '127.0.0.1');
        return client;
      };
      const client = await send();
      const arrived = decodeTunnelPacket((await first!.next(3_000)).data);
      assert.ok(arrived.ok);
      assert.equal(arrived.packet.client.port, client.address.port);

      // The operator moves transceiver 21 (a new pod IP): the relay follows the ConfigMap.
      await api.replaceNamespacedConfigMap({
        name: 'relay-routing',
        namespace: NAMESPACE,
        body: {
          metadata: { name: 'relay-routing' },
          data: { [ROUTING_TABLE_KEY]: table(2, second!.address.port) },
        },
      });
      await relay.waitFor('voice_edge_relay_routing_table_generation', {}, (value) => value === 2, 10_000);
      const moved = await send();
      const arrivedAgain = decodeTunnelPacket((await second!.next(3_000)).data);
      assert.ok(arrivedAgain.ok);
      assert.equal(arrivedAgain.packet.client.port, moved.address.port);
      assert.ok(await first!.silentFor(200), 'nothing to the old address');
      assert.equal(await relay.value('voice_edge_relay_routing_table_errors_total'), 0);
    } finally {
      assert.equal(await relay.stop(), 0, relay.output);
      await Promise.all([...clients, first!, second!].map((endpoint) => endpoint.close()));
      fixture.remove();
    }
  });
});
