// Running the operator against a test control plane: as a child process (`node operator/main.ts`,
// configured by VOICE_EDGE_OPERATOR_* like a pod) that a test can SIGKILL, and a stand-in for the
// kubelet's status writes when no kubelet runs (pods get an IP and turn Ready).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KubeClient } from '../../kube/client.ts';
import { resourcePath } from '../../kube/resources.ts';
import { RESOURCES } from '../../operator/resources.ts';
import { freeTcpPort } from './net.ts';

const MAIN = fileURLToPath(new URL('../../operator/main.ts', import.meta.url));
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/operator/', import.meta.url));

export interface OperatorProcessOptions {
  readonly kubeconfigPath: string;
  /** VOICE_EDGE_OPERATOR_* and anything else the process should see. */
  readonly env: Record<string, string>;
  /** Name of the log file under test-artifacts/operator/. */
  readonly logName: string;
  /** Resolve once /healthz answers (default), or at once (for a process meant to crash early). */
  readonly waitForHealth?: boolean;
}

export class OperatorProcess {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(child: ChildProcess, httpPort: number, logFile: string) {
    this.child = child;
    this.httpPort = httpPort;
    this.logFile = logFile;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts the operator and resolves once it serves /healthz (or rejects if it exits first). */
  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    mkdirSync(ARTIFACTS, { recursive: true });
    const logFile = join(ARTIFACTS, `${options.logName}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    const httpPort = await freeTcpPort();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KUBECONFIG: options.kubeconfigPath,
        VOICE_EDGE_OPERATOR_HTTP__HOST: '127.0.0.1',
        VOICE_EDGE_OPERATOR_HTTP__PORT: String(httpPort),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const operator = new OperatorProcess(child, httpPort, logFile);
    if (options.waitForHealth === false) return operator;
    let exited = false;
    void operator.exited.then(() => {
      exited = true;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (exited) throw new Error(`the operator exited while starting: see ${logFile}`);
      try {
        if ((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok) return operator;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the operator did not serve /healthz within 20 s: see ${logFile}`);
      }
      await sleep(50);
    }
  }

  /** The Prometheus text of its /metrics. */
  async metrics(): Promise<string> {
    return await (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
  }

  async leading(): Promise<boolean> {
    try {
      return /^voice_edge_operator_leader 1$/m.test(await this.metrics());
    } catch {
      return false;
    }
  }

  kill(): Promise<unknown> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM: a graceful stop (the Lease is released). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

interface PodObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  status?: { podIP?: string };
}

/**
 * What a kubelet would report, for tests without one: every pod of `namespace` without an IP gets
 * one (10.250.x.y, unique for the simulator's life: nothing answers there) and turns Running and
 * Ready. Only for integration tests of the operator; the e2e suite runs the real test kubelet.
 */
export class PodStatusSimulator {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #stop = new AbortController();
  #next = 1;
  #loop: Promise<void> | undefined;
  /** Pod name → IP given. */
  readonly ips = new Map<string, string>();

  constructor(client: KubeClient, namespace: string) {
    this.#client = client;
    this.#namespace = namespace;
  }

  start(): this {
    this.#loop ??= this.#run();
    return this;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        const list = await this.#client.get<{ items: PodObject[] }>(
          resourcePath(RESOURCES.pod, this.#namespace),
          {
            signal: this.#stop.signal,
          },
        );
        for (const pod of list.items) {
          if (pod.status?.podIP || pod.metadata.deletionTimestamp) continue;
          const n = this.#next++;
          const ip = `10.250.${n >> 8}.${n & 255}`;
          const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          await this.#client.request(
            'PATCH',
            resourcePath(RESOURCES.pod, this.#namespace, pod.metadata.name, 'status'),
            {
              body: {
                metadata: { uid: pod.metadata.uid },
                status: {
                  phase: 'Running',
                  podIP: ip,
                  podIPs: [{ ip }],
                  conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
                },
              },
              contentType: 'application/merge-patch+json',
              signal: this.#stop.signal,
            },
          );
          this.ips.set(pod.metadata.name, ip);
        }
      } catch {
        // the pod went away meanwhile, or the API server is down for a test: try again
      }
      await sleep(100, undefined, { signal: this.#stop.signal }).catch(() => undefined);
    }
  }
}

/**
 * Exactly what the operator needs (docs/operator.md lists the same): the tests run it with these
 * rules and nothing more, so a missing verb fails them. Server-side apply that creates an object
 * is authorised as `create` as well as `patch`.
 */
export const OPERATOR_RBAC_RULES = [
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters', 'transceiverpools'],
    verbs: ['get', 'list', 'watch', 'patch'],
  },
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters/status', 'transceiverpools/status', 'transceiverpools/scale'],
    verbs: ['get', 'patch'],
  },
  // Owner references with blockOwnerDeletion (OwnerReferencesPermissionEnforcement).
  {
    apiGroups: ['voice-edge.io'],
    resources: ['voiceedgeclusters/finalizers', 'transceiverpools/finalizers'],
    verbs: ['update'],
  },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'],
  },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'create', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'create', 'patch'] },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['roles', 'rolebindings'],
    verbs: ['get', 'create', 'patch'],
  },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['create', 'patch', 'delete'] },
  // The internal-API credential: read, and created when missing; never listed, watched or changed.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
] as const;

/** A client for the test's own reads and writes (the admin kubeconfig). */
export function adminClient(kubeConfig: ConstructorParameters<typeof KubeClient>[0]): KubeClient {
  return new KubeClient(kubeConfig);
}
