// A real Kubernetes control plane for tests: etcd (embedded), kube-apiserver and, unless left out,
// kube-controller-manager and kube-scheduler, all from the testcluster binary (test/kube/build.ts).
// Everything lives in a temp directory that stop() removes; logs go to test-artifacts/kube/<run>/.
// See docs/testing-kubernetes.md.
import { spawn } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureKubeBinaries, type KubeBinaries } from './build.ts';
import { ComponentProcess, describeExit } from './component-process.ts';
import { addExitCleanup } from './exit-cleanup.ts';
import { kubeconfigDocument } from './kubeconfig-file.ts';
import { createCertificateAuthority, createServiceAccountKeys, issueCertificate } from './pki.ts';

/** The test node's IP on the pod bridge (test/kube/kubelet.ts); the API server's certificate covers it. */
export const TEST_NODE_IP = '10.88.0.1';
export const TEST_POD_CIDR = '10.88.0.0/16';
export const TEST_SERVICE_CIDR = '10.96.0.0/16';
/** The `kubernetes` Service's ClusterIP: the first address of the service CIDR. */
const kubernetesServiceIp = '10.96.0.1';
const serviceAccountIssuer = 'https://kubernetes.default.svc.cluster.local';

export type ControlPlaneComponent = 'kube-controller-manager' | 'kube-scheduler';

/**
 * The controllers the tests rely on (Deployments, owner-reference garbage collection, EndpointSlices for the
 * mini kube-proxy, default ServiceAccounts, node lifecycle, PDB status, HPA) and nothing else: starting all
 * of them takes seconds longer.
 */
export const DEFAULT_CONTROLLERS: readonly string[] = [
  'deployment-controller',
  'replicaset-controller',
  'garbage-collector-controller',
  'endpointslice-controller',
  'endpoints-controller',
  'serviceaccount-controller',
  'namespace-controller',
  'node-lifecycle-controller',
  'pod-garbage-collector-controller',
  'disruption-controller',
  'horizontal-pod-autoscaler-controller',
  'root-ca-certificate-publisher-controller',
  'clusterrole-aggregation-controller',
];

export interface ControlPlaneOptions {
  /** Which components besides etcd and kube-apiserver to run; default both. */
  readonly components?: readonly ControlPlaneComponent[];
  /** kube-controller-manager --controllers; default DEFAULT_CONTROLLERS. */
  readonly controllers?: readonly string[];
  /** Where component logs go; default test-artifacts/kube/<run>/. */
  readonly logDir?: string;
  /** Names the run (the default log directory); default a timestamp and the pid. */
  readonly run?: string;
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ClientCredentials {
  readonly kubeconfigPath: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Admin (system:masters) kubeconfig. */
  readonly kubeconfigPath: string;
  /** The CA that signed the API server's certificate and every client certificate. */
  readonly caFile: string;
  readonly logDir: string;
  readonly binaries: KubeBinaries;
  /** The components running besides etcd and kube-apiserver. */
  readonly components: readonly ControlPlaneComponent[];
  /** Milliseconds each start-up step took (pki, etcd, kube-apiserver, kube-controller-manager, total). */
  readonly startupMs: Readonly<Record<string, number>>;
  kubeConfig(): KubeConfig;
  kubectl(args: readonly string[], options?: { input?: string }): Promise<CommandResult>;
  helm(args: readonly string[], options?: { input?: string }): Promise<CommandResult>;
  /**
   * A client certificate for `user` in `groups` and a kubeconfig using it (server `url`, or `server`):
   * how the test kubelet gets a node identity.
   */
  issueCredentials(options: {
    name: string;
    user: string;
    groups?: readonly string[];
    server?: string;
  }): Promise<ClientCredentials>;
  /** Stops kube-apiserver only (etcd and its data stay): an API server outage. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port against the same etcd; resolves when ready. */
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const tempPrefix = 'voice-edge-kube-';
let runCounter = 0;

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = performance.now();
  const startupMs: Record<string, number> = {};
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const result = await work();
    startupMs[name] = Math.round(performance.now() - t);
    return result;
  };

  const binaries = await ensureKubeBinaries();
  sweepLeftoverTempDirs();
  const run =
    options.run ?? `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${++runCounter}`;
  const logDir = options.logDir ?? join(repoRoot, 'test-artifacts', 'kube', run);
  await mkdir(logDir, { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), `${tempPrefix}${process.pid}-`));
  const processes = new Set<ComponentProcess>();
  const removeExitCleanup = addExitCleanup(() => {
    for (const p of processes) p.killNow();
    rmSync(dir, { recursive: true, force: true });
  });
  const childEnv = { ...process.env, TESTCLUSTER_PARENT_PID: String(process.pid) };

  const launch = (name: string, args: string[], readyLine?: RegExp) => {
    const { process: child, ready } = ComponentProcess.start(name, binaries.testcluster, [name, ...args], {
      logFile: join(logDir, `${name}.log`),
      env: childEnv,
      ...(readyLine ? { readyLine } : {}),
    });
    processes.add(child);
    child.exited.then(() => processes.delete(child));
    return { child, ready };
  };

  let stopped = false;
  const stopAll = async () => {
    // Clients first, etcd last: the API server shuts down cleanly only while etcd answers.
    const order = ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'];
    for (const name of order) {
      await Promise.all([...processes].filter((p) => p.name === name).map((p) => p.stop(1000)));
    }
  };

  try {
    const pki = join(dir, 'pki');
    await mkdir(pki);
    const { ca, serving, admin, serviceAccount } = await step('pki', async () => {
      const ca = await createCertificateAuthority(pki);
      const [serving, admin, serviceAccount] = await Promise.all([
        issueCertificate(ca, pki, {
          name: 'kube-apiserver',
          commonName: 'kube-apiserver',
          usage: 'server',
          ipAddresses: ['127.0.0.1', TEST_NODE_IP, kubernetesServiceIp],
          dnsNames: [
            'localhost',
            'kubernetes',
            'kubernetes.default',
            'kubernetes.default.svc',
            'kubernetes.default.svc.cluster.local',
          ],
        }),
        issueCertificate(ca, pki, {
          name: 'admin',
          commonName: 'voice-edge-test-admin',
          organizations: ['system:masters'],
          usage: 'client',
        }),
        createServiceAccountKeys(pki),
      ]);
      return { ca, serving, admin, serviceAccount };
    });
    const [caPem, adminCert, adminKey] = await Promise.all(
      [ca.certFile, admin.certFile, admin.keyFile].map((file) => readFile(file)),
    );
    const tls: TlsClient = { ca: caPem!, cert: adminCert!, key: adminKey! };

    const [etcdClientPort, etcdPeerPort, port] = (await distinctFreePorts([
      '127.0.0.1',
      '127.0.0.1',
      '0.0.0.0',
    ])) as [number, number, number];
    const url = `https://127.0.0.1:${port}`;
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdData = join(dir, 'etcd');
    await step('etcd', async () => {
      const { ready } = launch(
        'etcd',
        [etcdData, etcdUrl, `http://127.0.0.1:${etcdPeerPort}`],
        /^etcd ready$/,
      );
      await withTimeout(ready, 60_000, 'etcd did not become ready within 60 s');
    });

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeFile(
      kubeconfigPath,
      kubeconfigDocument({ server: url, caFile: ca.certFile, user: 'admin', credentials: admin }),
    );

    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${port}`,
      '--bind-address=0.0.0.0',
      // The `kubernetes` Service's endpoint, and an address pods (in their netns) reach the node at.
      `--advertise-address=${TEST_NODE_IP}`,
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      '--authorization-mode=Node,RBAC',
      // Node authorization without NodeRestriction would let a kubelet touch any node's objects.
      '--enable-admission-plugins=NodeRestriction',
      `--service-account-issuer=${serviceAccountIssuer}`,
      `--service-account-key-file=${serviceAccount.publicKeyFile}`,
      `--service-account-signing-key-file=${serviceAccount.privateKeyFile}`,
      `--service-cluster-ip-range=${TEST_SERVICE_CIDR}`,
      // Self-signed certificates would be written here were the TLS flags missing; keep it private.
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      '--profiling=false',
    ];
    const startApiServer = async () => {
      const { child } = launch('kube-apiserver', apiServerArgs);
      await waitForReadyz(url, tls, child, 120_000);
    };
    await step('kube-apiserver', startApiServer);

    const components = options.components ?? ['kube-controller-manager', 'kube-scheduler'];
    const componentKubeconfig = async (name: string, user: string, groups: string[]) => {
      const cert = await issueCertificate(ca, pki, {
        name,
        commonName: user,
        organizations: groups,
        usage: 'client',
      });
      const path = join(dir, `${name}.kubeconfig`);
      await writeFile(
        path,
        kubeconfigDocument({ server: url, caFile: ca.certFile, user, credentials: cert }),
      );
      return path;
    };
    if (components.includes('kube-scheduler')) {
      // The scheduler runs with its own identity: the bootstrap RBAC policy binds system:kube-scheduler.
      const kubeconfig = await componentKubeconfig('kube-scheduler', 'system:kube-scheduler', []);
      launch('kube-scheduler', [
        `--kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=0',
      ]);
    }
    if (components.includes('kube-controller-manager')) {
      await step('kube-controller-manager', async () => {
        // One identity for every controller (--use-service-account-credentials=false), so it needs
        // system:masters; per-controller ServiceAccounts cost seconds of start-up for nothing tests check.
        const kubeconfig = await componentKubeconfig(
          'kube-controller-manager',
          'system:kube-controller-manager',
          ['system:masters'],
        );
        const { child } = launch('kube-controller-manager', [
          `--kubeconfig=${kubeconfig}`,
          '--leader-elect=false',
          '--use-service-account-credentials=false',
          // A new Node carries a not-ready taint until the node lifecycle controller sees it Ready:
          // look every second, not every five.
          '--node-monitor-period=1s',
          `--root-ca-file=${ca.certFile}`,
          `--controllers=${(options.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
          '--bind-address=127.0.0.1',
          '--secure-port=0',
        ]);
        // Ready once the ServiceAccount controller made `default` in `default`: pods need it to be admitted.
        await waitForDefaultServiceAccount(url, tls, child, 60_000);
      });
    }
    startupMs.total = Math.round(performance.now() - started);

    const command = async (
      file: string,
      args: readonly string[],
      env: NodeJS.ProcessEnv,
      input: string | undefined,
    ): Promise<CommandResult> => {
      const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', resolve);
      });
      return { code, stdout, stderr };
    };
    const helmHome = join(dir, 'helm');

    const controlPlane: ControlPlane = {
      url,
      port,
      kubeconfigPath,
      caFile: ca.certFile,
      logDir,
      binaries,
      components,
      startupMs,
      kubeConfig() {
        const config = new KubeConfig();
        config.loadFromFile(kubeconfigPath);
        return config;
      },
      kubectl(args, opts) {
        return command(
          binaries.testcluster,
          ['kubectl', `--kubeconfig=${kubeconfigPath}`, ...args],
          process.env,
          opts?.input,
        );
      },
      helm(args, opts) {
        return command(
          binaries.helm,
          args,
          {
            ...process.env,
            KUBECONFIG: kubeconfigPath,
            HELM_CACHE_HOME: join(helmHome, 'cache'),
            HELM_CONFIG_HOME: join(helmHome, 'config'),
            HELM_DATA_HOME: join(helmHome, 'data'),
          },
          opts?.input,
        );
      },
      async issueCredentials({ name, user, groups = [], server = url }) {
        if (!/^[a-z0-9][a-z0-9.-]*$/.test(name))
          throw new Error(`credential name must be a file name: ${name}`);
        const cert = await issueCertificate(ca, pki, {
          name: `client-${name}`,
          commonName: user,
          organizations: groups,
          usage: 'client',
        });
        const path = join(dir, `client-${name}.kubeconfig`);
        await writeFile(path, kubeconfigDocument({ server, caFile: ca.certFile, user, credentials: cert }));
        return { kubeconfigPath: path, ...cert };
      },
      async stopApiServer() {
        // It stops listening at once but would wait for its clients' watches to end; they need not.
        await Promise.all([...processes].filter((p) => p.name === 'kube-apiserver').map((p) => p.stop(1000)));
      },
      async startApiServer() {
        if ([...processes].some((p) => p.name === 'kube-apiserver'))
          throw new Error('kube-apiserver is running');
        await startApiServer();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        removeExitCleanup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return controlPlane;
  } catch (error) {
    await stopAll();
    removeExitCleanup();
    rmSync(dir, { recursive: true, force: true });
    throw error instanceof Error ? new Error(`${error.message}\n(logs: ${logDir})`, { cause: error }) : error;
  }
}

/** Temp directories of control planes whose process is gone (killed before it could clean up). */
function sweepLeftoverTempDirs(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = new RegExp(`^${tempPrefix}(\\d+)-`).exec(entry);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Ports the kernel just handed out, held together so they differ from each other. */
async function distinctFreePorts(hosts: readonly string[]): Promise<number[]> {
  const servers = await Promise.all(
    hosts.map(
      (host) =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, host, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** PEM material for the control plane's own HTTPS requests (readiness checks). */
interface TlsClient {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

function get(url: string, tls: TlsClient): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { ...tls, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function waitForReadyz(
  url: string,
  tls: TlsClient,
  child: ComponentProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    if (!child.running) {
      throw new Error(`kube-apiserver exited (${describeExit(await child.exited)}):\n${child.tail()}`);
    }
    const answer = await get(`${url}/readyz`, tls);
    if (answer?.status === 200) return;
    if (answer)
      last = `HTTP ${answer.status}: ${answer.body
        .split('\n')
        .filter((l) => l.startsWith('[-]'))
        .join(' ')}`;
    if (Date.now() > deadline) throw new Error(`kube-apiserver not ready within ${timeoutMs} ms (${last})`);
    await sleep(100);
  }
}

async function waitForDefaultServiceAccount(
  url: string,
  tls: TlsClient,
  child: ComponentProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!child.running) {
      throw new Error(
        `kube-controller-manager exited (${describeExit(await child.exited)}):\n${child.tail()}`,
      );
    }
    const answer = await get(`${url}/api/v1/namespaces/default/serviceaccounts/default`, tls);
    if (answer?.status === 200) return;
    if (Date.now() > deadline) {
      throw new Error(`kube-controller-manager made no default ServiceAccount within ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}
