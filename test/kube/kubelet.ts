// The test kubelet: one Node of the test cluster whose pods run as local processes in network
// namespaces (pod-worker.ts), plus a mini kube-proxy (service-proxy.ts). It registers the Node as
// system:node:<name> (Node authorization + NodeRestriction apply to it as to a real kubelet), keeps its
// Lease fresh, writes pod status, and deletes a pod's object once the pod's processes are gone.
// Limits (no images, no mount namespaces, ServiceAccount token by KUBECONFIG): docs/testing-kubernetes.md.
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { isConflict, isNotFound, KubeApiError, KubeClient, PATCH } from '../../kube/client.ts';
import type { Informer, KubeObject } from '../../kube/informer.ts';
import { type ControlPlane, TEST_NODE_IP, TEST_POD_CIDR } from './control-plane.ts';
import { addExitCleanup } from './exit-cleanup.ts';
import { kubeconfigDocument } from './kubeconfig-file.ts';
import type { EnvSources } from './pod-env.ts';
import { PodNetwork, sweepPodNetwork } from './pod-network.ts';
import { time } from './pod-status.ts';
import { PodWorker, type PodWorkerContext } from './pod-worker.ts';
import { ServiceProxy } from './service-proxy.ts';
import { testInformer } from './test-informer.ts';

type Pod = V1Pod & KubeObject;

export interface TestKubeletOptions {
  readonly controlPlane: ControlPlane;
  /** Default `voice-edge-test-node`. */
  readonly nodeName?: string;
  /** The checkout whose cli/voice-edge.ts the voice-edge image runs; default this repository. */
  readonly repoRoot?: string;
  /** Container logs (<namespace>_<pod>_<container>.log); default <control plane logDir>/pods. */
  readonly logDir?: string;
  /** What the Node reports (the scheduler checks requests against it); default 16 CPUs, 32Gi, 110 pods. */
  readonly capacity?: { readonly cpu: string; readonly memory: string; readonly pods: string };
  readonly log?: (message: string) => void;
}

export interface TestPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly netns: string | undefined;
  readonly ip: string | undefined;
  readonly pids: readonly number[];
}

export interface TestKubelet {
  readonly nodeName: string;
  readonly nodeIP: string;
  readonly logDir: string;
  /** The pods this kubelet is running (their processes and network). */
  pods(): TestPod[];
  podLogFile(namespace: string, pod: string, container: string): string;
  stop(): Promise<void>;
}

const runDirPrefix = 'voice-edge-kubelet-';
const defaultRepoRoot = fileURLToPath(new URL('../../', import.meta.url));
const leaseDurationSeconds = 40;
const heartbeatMs = 10_000;

export async function startTestKubelet(options: TestKubeletOptions): Promise<TestKubelet> {
  const { controlPlane } = options;
  const nodeName = options.nodeName ?? 'voice-edge-test-node';
  const repoRoot = options.repoRoot ?? defaultRepoRoot;
  const logDir = options.logDir ?? join(controlPlane.logDir, 'pods');
  const capacity = options.capacity ?? { cpu: '16', memory: '32Gi', pods: '110' };
  const log = options.log ?? ((message: string) => process.stderr.write(`[test kubelet] ${message}\n`));
  await mkdir(logDir, { recursive: true });

  sweepLeftoverRunDirs();
  const network = await PodNetwork.create({ nodeIP: TEST_NODE_IP, podCidr: TEST_POD_CIDR, log });
  const workers = new Map<string, PodWorker>();
  const runDir = await mkdtemp(join(tmpdir(), `${runDirPrefix}${process.pid}-`));
  const removeExitCleanup = addExitCleanup(() => {
    for (const worker of workers.values()) for (const pid of worker.pids) safeKill(pid);
    sweepPodNetwork();
    rmSync(runDir, { recursive: true, force: true });
  });
  const clients: KubeClient[] = [];
  // Ends every retry loop (status writes, pod deletions) when the kubelet stops, API server up or not.
  const lifetime = new AbortController();
  let stopHeartbeat = () => {};
  let pods: Informer<Pod> | undefined;
  let proxy: ServiceProxy | undefined;

  const stop = async () => {
    lifetime.abort();
    stopHeartbeat();
    await pods?.stop();
    await proxy?.stop();
    await Promise.all([...workers.values()].map((worker) => worker.terminate(2)));
    workers.clear();
    await network.close();
    removeExitCleanup();
    for (const client of clients) client.close();
    await rm(runDir, { recursive: true, force: true });
  };

  try {
    const nodeCredentials = await controlPlane.issueCredentials({
      name: `kubelet-${nodeName}`,
      user: `system:node:${nodeName}`,
      groups: ['system:nodes'],
    });
    const proxyCredentials = await controlPlane.issueCredentials({
      name: `kube-proxy-${nodeName}`,
      user: 'system:kube-proxy',
    });
    const clientFor = (path: string) => {
      const config = new KubeConfig();
      config.loadFromFile(path);
      const client = new KubeClient(config);
      clients.push(client);
      return client;
    };
    const node = clientFor(nodeCredentials.kubeconfigPath);
    const proxyClient = clientFor(proxyCredentials.kubeconfigPath);
    const admin = new KubeClient(controlPlane.kubeConfig());
    clients.push(admin);

    await registerNode(node, nodeName, capacity);
    stopHeartbeat = startHeartbeat(node, nodeName, capacity, log);

    const sources = nodeSources(node);
    const podApiServer = `https://${TEST_NODE_IP}:${controlPlane.port}`;
    const podKubeconfig = async (pod: V1Pod) => {
      const dir = join(runDir, 'pods', pod.metadata?.uid ?? 'unknown');
      await mkdir(dir, { recursive: true });
      const token = await serviceAccountToken(node, pod);
      const caFile = join(dir, 'ca.crt');
      await writeFile(caFile, await readFile(controlPlane.caFile));
      const path = join(dir, 'kubeconfig');
      await writeFile(
        path,
        kubeconfigDocument({
          server: podApiServer,
          caFile,
          user: `system:serviceaccount:${pod.metadata?.namespace}:${pod.spec?.serviceAccountName ?? 'default'}`,
          credentials: { token },
          namespace: pod.metadata?.namespace ?? 'default',
        }),
        { mode: 0o600 },
      );
      return path;
    };

    const statusWriter = new PodStatusWriter(node, log, lifetime.signal);
    const context: Omit<PodWorkerContext, 'onChange'> = {
      network,
      sources,
      podKubeconfig,
      repoRoot,
      logDir,
      nodeIP: TEST_NODE_IP,
      nodeCapacity: capacity,
      log,
    };
    const deleting = new Set<string>();
    const finishDeletion = async (pod: V1Pod) => {
      const uid = pod.metadata?.uid ?? '';
      if (deleting.has(uid)) return;
      deleting.add(uid);
      const worker = workers.get(uid);
      if (worker) {
        await worker.terminate(pod.metadata?.deletionGracePeriodSeconds ?? 30);
        await statusWriter.flush(worker);
      }
      // As a real kubelet does once the pod's containers are gone: remove the object for good.
      const path = `/api/v1/namespaces/${pod.metadata?.namespace}/pods/${pod.metadata?.name}`;
      while (!lifetime.signal.aborted) {
        try {
          await node.request('DELETE', path, { body: { gracePeriodSeconds: 0, preconditions: { uid } } });
          break;
        } catch (error) {
          if (isNotFound(error) || isConflict(error)) break;
          log(`deleting pod ${pod.metadata?.namespace}/${pod.metadata?.name}: ${(error as Error).message}`);
          await sleep(1000, undefined, { signal: lifetime.signal }).catch(() => {});
        }
      }
      if (worker) statusWriter.forget(worker);
      workers.delete(uid);
      deleting.delete(uid);
    };

    const upsert = (pod: Pod) => {
      const uid = pod.metadata.uid ?? '';
      const worker = workers.get(uid);
      if (pod.metadata.deletionTimestamp) {
        worker?.update(pod);
        void finishDeletion(pod).catch((error) => log(`deleting pod ${pod.metadata.name}: ${error}`));
        return;
      }
      if (worker) {
        worker.update(pod);
        return;
      }
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
      const created: PodWorker = new PodWorker(pod, {
        ...context,
        onChange: () => statusWriter.schedule(created),
      });
      workers.set(uid, created);
      statusWriter.schedule(created);
      void created.start();
    };
    const remove = (pod: Pod) => {
      const uid = pod.metadata.uid ?? '';
      const worker = workers.get(uid);
      if (!worker) return;
      statusWriter.forget(worker);
      // Deleted without waiting for us (grace period 0, --force): kill at once.
      void worker.terminate(0).then(() => {
        if (!deleting.has(uid)) workers.delete(uid);
      });
    };
    pods = testInformer<Pod>(
      node,
      { name: 'pods', path: '/api/v1/pods', fieldSelector: `spec.nodeName=${nodeName}`, log },
      {
        onAdd: upsert,
        onUpdate(previous, pod) {
          // A relist can find the name taken by another pod (deleted and created while the watch was
          // down): the old one is gone.
          if (previous.metadata.uid !== pod.metadata.uid) remove(previous);
          upsert(pod);
        },
        onDelete: remove,
      },
    );
    pods.start();

    proxy = new ServiceProxy({ proxy: proxyClient, admin, network, log });
    await Promise.all([pods.whenSynced(), proxy.start()]);
    if (controlPlane.components.includes('kube-controller-manager'))
      await waitUntilSchedulable(admin, nodeName);
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }

  let stopped: Promise<void> | undefined;
  return {
    nodeName,
    nodeIP: TEST_NODE_IP,
    logDir,
    pods: () =>
      [...workers.values()].map((worker) => ({
        namespace: worker.pod.metadata?.namespace ?? '',
        name: worker.pod.metadata?.name ?? '',
        uid: worker.uid,
        netns: worker.sandbox?.netns,
        ip: worker.sandbox?.ip,
        pids: worker.pids,
      })),
    podLogFile: (namespace, pod, container) => join(logDir, `${namespace}_${pod}_${container}.log`),
    stop() {
      stopped ??= stop();
      return stopped;
    },
  };
}

/** Writes each pod's status when it changes: one write in flight per pod, the latest state wins. */
class PodStatusWriter {
  readonly #client: KubeClient;
  readonly #log: (message: string) => void;
  readonly #closed: AbortSignal;
  readonly #state = new Map<
    PodWorker,
    { written: string; writing: Promise<void> | undefined; dirty: boolean }
  >();

  constructor(client: KubeClient, log: (message: string) => void, closed: AbortSignal) {
    this.#client = client;
    this.#log = log;
    this.#closed = closed;
  }

  schedule(worker: PodWorker): void {
    let state = this.#state.get(worker);
    if (!state) {
      state = { written: '', writing: undefined, dirty: false };
      this.#state.set(worker, state);
    }
    state.dirty = true;
    if (!state.writing) state.writing = this.#drain(worker, state);
  }

  async flush(worker: PodWorker): Promise<void> {
    this.schedule(worker);
    await this.#state.get(worker)?.writing;
  }

  forget(worker: PodWorker): void {
    this.#state.delete(worker);
  }

  async #drain(
    worker: PodWorker,
    state: { written: string; writing: Promise<void> | undefined; dirty: boolean },
  ): Promise<void> {
    try {
      while (state.dirty && this.#state.get(worker) === state && !this.#closed.aborted) {
        state.dirty = false;
        const status = worker.status(Date.now());
        const text = JSON.stringify(status);
        if (text === state.written) continue;
        const { namespace, name } = worker.pod.metadata ?? {};
        try {
          await this.#client.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
            body: { metadata: { uid: worker.uid }, status },
            contentType: PATCH.merge,
          });
          state.written = text;
        } catch (error) {
          if (
            isNotFound(error) ||
            isConflict(error) ||
            (error instanceof KubeApiError && error.status === 422)
          )
            return;
          this.#log(`status of pod ${namespace}/${name}: ${(error as Error).message}`);
          state.dirty = true;
          await sleep(1000, undefined, { signal: this.#closed }).catch(() => {});
        }
      }
    } finally {
      state.writing = undefined;
    }
  }
}

async function registerNode(
  client: KubeClient,
  nodeName: string,
  capacity: { cpu: string; memory: string; pods: string },
): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: nodeName,
      labels: {
        'kubernetes.io/hostname': nodeName,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64',
        'voice-edge.io/test-kubelet': 'true',
      },
    },
    spec: {},
  };
  try {
    await client.request('POST', '/api/v1/nodes', { body: node });
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
  await client.request('PATCH', `/api/v1/nodes/${nodeName}/status`, {
    body: { status: nodeStatus(nodeName, capacity, Date.now()) },
    contentType: PATCH.merge,
  });
}

function nodeStatus(nodeName: string, capacity: { cpu: string; memory: string; pods: string }, now: number) {
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: time(now),
    lastTransitionTime: time(now),
  });
  const resources = { ...capacity, 'ephemeral-storage': '100Gi' };
  return {
    capacity: resources,
    allocatable: resources,
    conditions: [
      condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'test kubelet'),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'test kubelet'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'test kubelet'),
      condition('Ready', 'True', 'KubeletReady', 'voice-edge test kubelet is posting ready status'),
    ],
    addresses: [
      { type: 'InternalIP', address: TEST_NODE_IP },
      { type: 'Hostname', address: nodeName },
    ],
    nodeInfo: {
      machineID: nodeName,
      systemUUID: nodeName,
      bootID: String(process.pid),
      kernelVersion: release(),
      osImage: 'voice-edge test kubelet',
      containerRuntimeVersion: 'testkubelet://1',
      kubeletVersion: 'v1.37.2',
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
    },
  };
}

/**
 * Renews the node's Lease every 10 s (what the node lifecycle controller watches) and re-posts the
 * Ready condition every minute; failures (an API server outage) are logged and retried.
 */
function startHeartbeat(
  client: KubeClient,
  nodeName: string,
  capacity: { cpu: string; memory: string; pods: string },
  log: (message: string) => void,
): () => void {
  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${nodeName}`;
  let lastStatus = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const microTime = () => new Date().toISOString().replace('Z', '000Z');
  const renew = async () => {
    let lease: { metadata?: { resourceVersion?: string } } | undefined;
    try {
      lease = await client.get(leasePath);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const spec = { holderIdentity: nodeName, leaseDurationSeconds, renewTime: microTime() };
    if (lease) {
      await client.request('PUT', leasePath, { body: { ...lease, spec } });
    } else {
      const nodeObject = await client.get<{ metadata: { uid: string } }>(`/api/v1/nodes/${nodeName}`);
      await client.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name: nodeName,
            namespace: 'kube-node-lease',
            ownerReferences: [
              { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeObject.metadata.uid },
            ],
          },
          spec,
        },
      });
    }
    if (Date.now() - lastStatus >= 60_000) {
      await client.request('PATCH', `/api/v1/nodes/${nodeName}/status`, {
        body: { status: { conditions: nodeStatus(nodeName, capacity, Date.now()).conditions } },
        contentType: PATCH.merge,
      });
      lastStatus = Date.now();
    }
  };
  const beat = async () => {
    try {
      await renew();
    } catch (error) {
      log(`node heartbeat: ${(error as Error).message}`);
    }
    if (!stopped) timer = setTimeout(beat, heartbeatMs);
  };
  void beat();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** TaintNodesByCondition gives a new Node a not-ready taint; the node lifecycle controller lifts it. */
async function waitUntilSchedulable(client: KubeClient, nodeName: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const node = await client.get<{ spec?: { taints?: Array<{ key: string }> } }>(
      `/api/v1/nodes/${nodeName}`,
    );
    const taints = node.spec?.taints ?? [];
    if (!taints.some((taint) => taint.key.startsWith('node.kubernetes.io/'))) return;
    if (Date.now() > deadline) {
      throw new Error(`node ${nodeName} still has taints ${taints.map((t) => t.key).join(', ')} after 60 s`);
    }
    await sleep(100);
  }
}

/** Secrets and ConfigMaps as the node may read them (only those its pods reference). */
function nodeSources(client: KubeClient): EnvSources {
  const read = async (kind: 'secrets' | 'configmaps', namespace: string, name: string) => {
    // The Node authorizer learns of a new pod's references a moment after the pod is bound: retry 403.
    for (let attempt = 0; ; attempt++) {
      try {
        return await client.get<{ data?: Record<string, string> }>(
          `/api/v1/namespaces/${namespace}/${kind}/${name}`,
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        if (!(error instanceof KubeApiError && error.status === 403) || attempt >= 20) throw error;
        await sleep(250);
      }
    }
  };
  return {
    async secret(namespace, name) {
      const secret = await read('secrets', namespace, name);
      if (!secret) return undefined;
      const data: Record<string, string> = {};
      for (const [key, value] of Object.entries(secret.data ?? {}))
        data[key] = Buffer.from(value, 'base64').toString('utf8');
      return data;
    },
    async configMap(namespace, name) {
      const configMap = await read('configmaps', namespace, name);
      return configMap ? { ...(configMap.data ?? {}) } : undefined;
    },
  };
}

/** A TokenRequest token for the pod's ServiceAccount, bound to the pod (what a projected volume holds). */
async function serviceAccountToken(client: KubeClient, pod: V1Pod): Promise<string> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const account = pod.spec?.serviceAccountName ?? 'default';
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await client.request<{ status: { token: string } }>(
        'POST',
        `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`,
        {
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              // A day: longer than any test; the kubelet does not rotate it (nothing re-reads a kubeconfig).
              expirationSeconds: 86_400,
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: pod.metadata?.name,
                uid: pod.metadata?.uid,
              },
            },
          },
        },
      );
      return response.status.token;
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 403) || attempt >= 40) throw error;
      await sleep(250);
    }
  }
}

/** Run directories (pod kubeconfigs) of kubelets whose process died before it could remove them. */
function sweepLeftoverRunDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    const match = new RegExp(`^${runDirPrefix}(\\d+)-`).exec(entry);
    if (!match || Number(match[1]) === process.pid) continue;
    try {
      process.kill(Number(match[1]), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH')
        rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    }
  }
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
