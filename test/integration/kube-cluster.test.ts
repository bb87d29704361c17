// The test Kubernetes cluster itself (test/kube/): a real kube-apiserver, controller-manager and
// scheduler, and the test kubelet running pods as local processes in network namespaces, with its mini
// kube-proxy. Needs root (network namespaces, iptables); see docs/testing-kubernetes.md.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { KubeClient } from '../../kube/client.ts';
import { type ControlPlane, startControlPlane, TEST_NODE_IP } from '../kube/control-plane.ts';
import { startTestKubelet, type TestKubelet } from '../kube/kubelet.ts';
import { testInformer } from '../kube/test-informer.ts';
import { UdpEndpoint } from '../support/net.ts';
import { makeKeyring } from '../support/relay-process.ts';
import { waitUntil } from '../support/wait.ts';

const ns = 'kube-test';
const voiceEdgeImage = 'ghcr.io/voice-edge/voice-edge:test';
const echoImage = 'voice-edge/test-udp-echo:test';

interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    hostIP?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{
      ready: boolean;
      restartCount: number;
      state: {
        waiting?: { reason: string; message?: string };
        running?: object;
        terminated?: { exitCode: number };
      };
    }>;
  };
}

describe('test Kubernetes cluster', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, () => {
  let cluster: ControlPlane;
  let kubelet: TestKubelet;

  const kubectl = async (args: string[], input?: string) => {
    const result = await cluster.kubectl(args, input === undefined ? {} : { input });
    assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const apply = (yaml: string) => kubectl(['apply', '-f', '-'], yaml);
  const getJson = async <T>(args: string[]): Promise<T> =>
    JSON.parse(await kubectl(['get', '-o', 'json', ...args])) as T;
  const podsOf = async (selector: string) =>
    (await getJson<{ items: PodJson[] }>(['pods', '-n', ns, '-l', selector])).items;
  const readyPods = async (selector: string, count: number) => {
    let pods: PodJson[] = [];
    await waitUntil(
      async () => {
        pods = await podsOf(selector);
        return (
          pods.length === count &&
          pods.every((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        );
      },
      60_000,
      `${count} ready pods ${selector}`,
    );
    return pods;
  };

  before(async () => {
    cluster = await startControlPlane();
    kubelet = await startTestKubelet({ controlPlane: cluster });
    await kubectl(['create', 'namespace', ns]);
    await waitUntil(
      async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', ns])).code === 0,
      30_000,
      'the default ServiceAccount',
    );
  });

  after(async () => {
    await kubelet?.stop();
    await cluster?.stop();
    // Nothing of the node is left on the host.
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /^vek-/m);
    assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }), /: vek/);
  });

  test('the API server serves v1.37.2 over a certificate valid for the node IP; the node is Ready', async () => {
    const version = JSON.parse(await kubectl(['version', '-o', 'json'])) as {
      serverVersion: { gitVersion: string };
    };
    assert.equal(version.serverVersion.gitVersion, 'v1.37.2');
    const cert = execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], {
      input: await tlsCertificateOf(TEST_NODE_IP, cluster.port),
      encoding: 'utf8',
    });
    assert.match(cert, /IP Address:10\.88\.0\.1/);
    const node = await getJson<{
      spec: { taints?: unknown[] };
      status: { conditions: Array<{ type: string; status: string }>; addresses: Array<{ address: string }> };
    }>(['node', kubelet.nodeName]);
    assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(node.spec.taints ?? [], []);
    assert.equal(node.status.addresses[0]?.address, TEST_NODE_IP);
    const lease = await getJson<{ spec: { holderIdentity: string } }>([
      'lease',
      '-n',
      'kube-node-lease',
      kubelet.nodeName,
    ]);
    assert.equal(lease.spec.holderIdentity, kubelet.nodeName);
    // helm reaches the cluster too (the chart's tests install through it).
    const helmVersion = await cluster.helm(['version', '--short']);
    assert.match(helmVersion.stdout, /^v4\.3\.1/);
    const releases = await cluster.helm(['list', '--all-namespaces', '--output', 'json']);
    assert.equal(releases.code, 0, releases.stderr);
    assert.deepEqual(JSON.parse(releases.stdout), []);
  });

  test('a Deployment of the voice-edge image: own netns and pod IP, API access by its ServiceAccount, ready by probe, TCP NodePort, gone when deleted', async () => {
    const keys = JSON.stringify(makeKeyring([1]).document);
    const table = JSON.stringify({ clusterId: 1, generation: 1, transceivers: [] });
    await apply(`
apiVersion: v1
kind: Secret
metadata: {name: routing-keys, namespace: ${ns}}
stringData: {keys.yaml: '${keys}'}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: edge-routing, namespace: ${ns}}
data: {routing.json: '${table}'}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: routing-reader, namespace: ${ns}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: routing-reader, namespace: ${ns}}
rules: [{apiGroups: [''], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: routing-reader, namespace: ${ns}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: routing-reader}
subjects: [{kind: ServiceAccount, name: routing-reader, namespace: ${ns}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: relay, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: relay}}
  template:
    metadata: {labels: {app: relay}}
    spec:
      serviceAccountName: routing-reader
      terminationGracePeriodSeconds: 10
      containers:
      - name: relay
        image: ${voiceEdgeImage}
        args: [relay]
        ports: [{name: http, containerPort: 9090}]
        env:
        - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        - {name: VOICE_EDGE_RELAY_CLUSTER_ID, value: "1"}
        - {name: VOICE_EDGE_RELAY_LISTEN, value: '["$(POD_IP):3478"]'}
        - {name: VOICE_EDGE_RELAY_WORKERS, value: "1"}
        - {name: VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME, value: edge-routing}
        - {name: VOICE_EDGE_RELAY_HTTP__HOST, value: 0.0.0.0}
        - {name: VOICE_EDGE_RELAY_HTTP__PORT, value: "9090"}
        - {name: VOICE_EDGE_RELAY_SHUTDOWN__DRAIN_MS, value: "0"}
        - {name: VOICE_EDGE_ROUTING_KEYS, valueFrom: {secretKeyRef: {name: routing-keys, key: keys.yaml}}}
        readinessProbe: {httpGet: {path: /readyz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: relay-http, namespace: ${ns}}
spec:
  type: NodePort
  selector: {app: relay}
  ports: [{name: http, protocol: TCP, port: 9090, targetPort: http}]
`);
    // Ready = the relay read its routing table from the ConfigMap through the API server at
    // 10.88.0.1, with the pod's TokenRequest token: env, KUBECONFIG, RBAC and the pod network all work.
    const [pod] = await readyPods('app=relay', 1);
    assert.ok(pod);
    assert.equal(pod.spec.nodeName, kubelet.nodeName);
    assert.match(pod.status.podIP ?? '', /^10\.88\.\d+\.\d+$/);
    assert.equal(pod.status.hostIP, TEST_NODE_IP);
    assert.equal(pod.status.phase, 'Running');
    const running = kubelet.pods().find((p) => p.uid === pod.metadata.uid);
    assert.ok(running?.netns && running.pids.length === 1, 'the kubelet runs it');
    const pid = running.pids[0]!;
    assert.notEqual(
      await readlink(`/proc/${pid}/ns/net`),
      await readlink('/proc/self/ns/net'),
      'its own netns',
    );
    assert.match(
      execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }),
      new RegExp(`^${running.netns}\\b`, 'm'),
    );
    const inside = execFileSync('ip', ['-n', running.netns, '-4', '-o', 'addr', 'show', 'eth0'], {
      encoding: 'utf8',
    });
    assert.match(inside, new RegExp(`inet ${pod.status.podIP?.replaceAll('.', '\\.')}/16`));

    const service = await getJson<{ spec: { ports: Array<{ nodePort: number }> } }>([
      'service',
      '-n',
      ns,
      'relay-http',
    ]);
    const nodePort = service.spec.ports[0]!.nodePort;
    let readyz: { status: number; body: string } | undefined;
    await waitUntil(
      async () => {
        readyz = await httpGet(`http://${TEST_NODE_IP}:${nodePort}/readyz`);
        return readyz?.status === 200;
      },
      20_000,
      'the relay through its TCP NodePort',
    );
    assert.match(readyz?.body ?? '', /ready/);

    await kubectl(['delete', 'deployment', 'relay', '-n', ns, '--wait=true']);
    await waitUntil(async () => (await podsOf('app=relay')).length === 0, 30_000, 'the relay pod deleted');
    assert.equal(processAlive(pid), false, 'its process is gone');
    assert.doesNotMatch(
      execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }),
      new RegExp(`^${running.netns}\\b`, 'm'),
    );
    const log = await readFile(kubelet.podLogFile(ns, pod.metadata.name, 'relay'), 'utf8');
    assert.match(log, /start #0/);
  });

  test('env resolution (value, $(VAR), fieldRef, secretKeyRef, configMapKeyRef, optional) seen by the process, over UDP through a NodePort and the LoadBalancer address', async () => {
    await apply(`
apiVersion: v1
kind: Secret
metadata: {name: echo-secret, namespace: ${ns}}
stringData: {token: s3cret}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: echo-config, namespace: ${ns}}
data: {mode: loud}
---
apiVersion: v1
kind: Pod
metadata: {name: echo-env, namespace: ${ns}, labels: {app: echo-env}}
spec:
  containers:
  - name: echo
    image: ${echoImage}
    args: [--udp-port, "5000", --http-port, "8080"]
    env:
    - {name: PLAIN, value: plain-value}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: LISTEN, value: "$(POD_IP):5000"}
    - {name: ESCAPED, value: "$$(POD_IP)"}
    - {name: UNDEFINED_REF, value: "$(NOPE)"}
    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: ACCOUNT, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: echo-secret, key: token}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: echo-config, key: mode}}}
    - {name: MAYBE, valueFrom: {configMapKeyRef: {name: no-such-config, key: x, optional: true}}}
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo-env, namespace: ${ns}}
spec:
  type: LoadBalancer
  selector: {app: echo-env}
  ports: [{name: udp, protocol: UDP, port: 5353, targetPort: 5000}]
`);
    const [pod] = await readyPods('app=echo-env', 1);
    assert.ok(pod);
    const service = await getJson<{
      spec: { ports: Array<{ nodePort: number }> };
      status: { loadBalancer: { ingress?: Array<{ ip: string }> } };
    }>(['service', '-n', ns, 'echo-env']);
    const client = await UdpEndpoint.open(TEST_NODE_IP);
    try {
      const env = await askEnv(client, service.spec.ports[0]!.nodePort);
      assert.deepEqual(
        {
          PLAIN: env.PLAIN,
          LISTEN: env.LISTEN,
          ESCAPED: env.ESCAPED,
          UNDEFINED_REF: env.UNDEFINED_REF,
          NAME: env.NAME,
          NAMESPACE: env.NAMESPACE,
          UID: env.UID,
          NODE: env.NODE,
          ACCOUNT: env.ACCOUNT,
          TOKEN: env.TOKEN,
          MODE: env.MODE,
          MAYBE: env.MAYBE,
          HOSTNAME: env.HOSTNAME,
        },
        {
          PLAIN: 'plain-value',
          LISTEN: `${pod.status.podIP}:5000`,
          ESCAPED: '$(POD_IP)',
          UNDEFINED_REF: '$(NOPE)',
          NAME: 'echo-env',
          NAMESPACE: ns,
          UID: pod.metadata.uid,
          NODE: kubelet.nodeName,
          ACCOUNT: 'default',
          TOKEN: 's3cret',
          MODE: 'loud',
          MAYBE: undefined,
          HOSTNAME: 'echo-env',
        },
      );
      // KUBECONFIG: the pod's ServiceAccount, at the node IP, trusting the cluster CA.
      const kubeconfig = readFileSync(env.KUBECONFIG ?? '', 'utf8');
      assert.match(kubeconfig, new RegExp(`server: https://10\\.88\\.0\\.1:${cluster.port}`));
      assert.match(kubeconfig, /token: ey/);

      // The LoadBalancer Service looks provisioned, at the node IP, and answers on its own port there.
      await waitUntil(
        async () =>
          (await getJson<typeof service>(['service', '-n', ns, 'echo-env'])).status.loadBalancer.ingress?.[0]
            ?.ip === TEST_NODE_IP,
        10_000,
        'the load balancer ingress',
      );
      await client.send(Buffer.from('ping'), 5353, TEST_NODE_IP);
      assert.equal((await client.next(5000)).data.toString(), 'ping');
    } finally {
      await client.close();
    }
  });

  test('a UDP NodePort spreads flows over every ready endpoint', async () => {
    await apply(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo-pair, namespace: ${ns}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo-pair}}
  template:
    metadata: {labels: {app: echo-pair}}
    spec:
      containers:
      - name: echo
        image: ${echoImage}
        args: [--udp-port, "5000", --http-port, "8080"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo-pair, namespace: ${ns}}
spec:
  type: NodePort
  selector: {app: echo-pair}
  ports: [{protocol: UDP, port: 5000}]
`);
    const pods = await readyPods('app=echo-pair', 2);
    const service = await getJson<{ spec: { ports: Array<{ nodePort: number }> } }>([
      'service',
      '-n',
      ns,
      'echo-pair',
    ]);
    const nodePort = service.spec.ports[0]!.nodePort;
    // Pods are Ready before the endpointslice controller and then the kube-proxy have caught up.
    await waitUntil(
      async () =>
        execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' })
          .split('\n')
          .filter((line) => line.includes(`--dport ${nodePort} `) && line.includes('DNAT')).length === 2,
      20_000,
      'DNAT rules for both endpoints',
    );
    const seen = new Set<string>();
    // Each socket is a new flow; 24 flows all landing on one of two endpoints: p = 2^-23.
    for (let i = 0; i < 24; i++) {
      const client = await UdpEndpoint.open(TEST_NODE_IP);
      try {
        seen.add((await askEnv(client, nodePort)).HOSTNAME ?? '');
      } finally {
        await client.close();
      }
    }
    assert.deepEqual([...seen].sort(), pods.map((p) => p.metadata.name).sort());
    await kubectl(['delete', 'deployment', 'echo-pair', '-n', ns]);
  });

  test('from inside a pod: another pod and the pod itself through ClusterIP and nodeIP:nodePort, and the API server through the kubernetes Service', async () => {
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: caller, namespace: ${ns}, labels: {app: caller}}
spec:
  containers:
  - name: echo
    image: ${echoImage}
    # exec probes run inside the pod's network namespace
    readinessProbe: {exec: {command: [sh, -c, 'ip -4 -o addr show eth0 | grep -q " 10\\.88\\."']}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: callee, namespace: ${ns}, labels: {app: callee}}
spec:
  containers:
  - {name: echo, image: ${echoImage}, readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {name: callee, namespace: ${ns}}
spec: {type: NodePort, selector: {app: callee}, ports: [{protocol: UDP, port: 7000, targetPort: 5000}]}
---
apiVersion: v1
kind: Service
metadata: {name: caller, namespace: ${ns}}
spec: {type: NodePort, selector: {app: caller}, ports: [{protocol: UDP, port: 7000, targetPort: 5000}]}
`);
    await readyPods('app in (caller,callee)', 2);
    const netns = kubelet.pods().find((p) => p.name === 'caller')?.netns;
    assert.ok(netns);
    const addresses = async (name: string) => {
      const service = await getJson<{ spec: { clusterIP: string; ports: Array<{ nodePort: number }> } }>([
        'service',
        '-n',
        ns,
        name,
      ]);
      return [`${service.spec.clusterIP}:7000`, `${TEST_NODE_IP}:${service.spec.ports[0]!.nodePort}`];
    };
    // The second pair lands on the caller itself: hairpin through the bridge.
    for (const [target, address] of [
      ...(await addresses('callee')).map((a) => ['callee', a] as const),
      ...(await addresses('caller')).map((a) => ['caller', a] as const),
    ]) {
      assert.equal(udpAskFromNetns(netns, address), target, `caller → ${address}`);
    }
    const kubernetes = await getJson<{ spec: { clusterIP: string } }>(['service', 'kubernetes']);
    assert.equal(httpsStatusFromNetns(netns, `https://${kubernetes.spec.clusterIP}/readyz`), '200');
    await kubectl(['delete', 'pod', '-n', ns, 'caller', 'callee']);
  });

  test('restart policies: Never ends Failed with the exit code, OnFailure restarts with back-off; foreign images ErrImagePull', async () => {
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: exits-never, namespace: ${ns}}
spec:
  restartPolicy: Never
  containers: [{name: main, image: ${voiceEdgeImage}, args: [no-such-component]}]
---
apiVersion: v1
kind: Pod
metadata: {name: exits-onfailure, namespace: ${ns}}
spec:
  restartPolicy: OnFailure
  containers: [{name: main, image: ${voiceEdgeImage}, args: [no-such-component]}]
---
apiVersion: v1
kind: Pod
metadata: {name: foreign, namespace: ${ns}}
spec:
  containers: [{name: main, image: nginx:1.27}]
`);
    const pod = (name: string) => getJson<PodJson>(['pod', '-n', ns, name]);
    await waitUntil(
      async () => (await pod('exits-never')).status.phase === 'Failed',
      30_000,
      'exits-never Failed',
    );
    assert.equal((await pod('exits-never')).status.containerStatuses?.[0]?.state.terminated?.exitCode, 2);
    await waitUntil(
      async () => ((await pod('exits-onfailure')).status.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
      30_000,
      'exits-onfailure restarted',
    );
    const restarting = await pod('exits-onfailure');
    assert.equal(restarting.status.phase, 'Running');
    const foreign = (await pod('foreign')).status.containerStatuses?.[0]?.state.waiting;
    assert.equal(foreign?.reason, 'ErrImagePull');
    assert.match(foreign?.message ?? '', /test kubelet runs only voice-edge images/);
    await kubectl(['delete', 'pod', '-n', ns, 'exits-never', 'exits-onfailure', 'foreign', '--wait=true']);
  });

  test('deletion sends SIGTERM and waits for the process; the API server outage keeps etcd data and running pods', async () => {
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: survivor, namespace: ${ns}, labels: {app: survivor}}
spec:
  containers:
  - {name: echo, image: ${echoImage}, readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}}
`);
    const [before] = await readyPods('app=survivor', 1);
    const pid = kubelet.pods().find((p) => p.name === 'survivor')?.pids[0];
    assert.ok(pid);

    // A watcher of ConfigMaps (the routing table's kind) through the outage.
    const admin = new KubeClient(cluster.kubeConfig());
    const seen: string[] = [];
    let restarts = 0;
    const configMaps = testInformer(
      admin,
      { name: 'configmaps', path: `/api/v1/namespaces/${ns}/configmaps`, onRestart: () => restarts++ },
      { onAdd: (cm) => seen.push(cm.metadata.name) },
    );
    configMaps.start();
    await configMaps.whenSynced();

    await cluster.stopApiServer();
    assert.notEqual((await cluster.kubectl(['get', 'pods', '-n', ns])).code, 0, 'the API server is down');
    assert.ok(processAlive(pid), 'the pod keeps running through the outage');
    await cluster.startApiServer();

    const [after] = await readyPods('app=survivor', 1);
    assert.equal(after?.metadata.uid, before?.metadata.uid, 'the same pod, from etcd');
    // The kubelet's watch came back: a pod created after the restart runs.
    await apply(`
apiVersion: v1
kind: Pod
metadata: {name: newcomer, namespace: ${ns}, labels: {app: newcomer}}
spec:
  containers:
  - {name: echo, image: ${echoImage}, readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}}
`);
    await readyPods('app=newcomer', 1);
    // The watch resumed: it failed with the API server (a lost connection, or 410 Gone from the
    // restarted server's watch cache) and the informer listed again.
    await kubectl(['create', 'configmap', 'after-outage', '-n', ns]);
    await waitUntil(async () => seen.includes('after-outage'), 20_000, 'the ConfigMap watch to resume');
    assert.ok(restarts >= 1, 'listed again after the watch failed');
    await configMaps.stop();
    admin.close();

    await kubectl(['delete', 'pod', '-n', ns, 'survivor', 'newcomer', '--wait=true']);
    assert.equal(processAlive(pid), false);
    const log = await readFile(kubelet.podLogFile(ns, 'survivor', 'echo'), 'utf8');
    assert.match(log, /SIGTERM, stopping/);
  });
});

/** Sends `env?` from inside a network namespace; the answering pod's HOSTNAME (or 'timeout'). */
function udpAskFromNetns(netns: string, address: string): string {
  const [host, port] = address.split(':');
  const script = `const s = require('dgram').createSocket('udp4');
    s.on('message', (m) => { console.log(JSON.parse(m).HOSTNAME); process.exit(0); });
    const ask = () => s.send('env?', ${port}, '${host}');
    ask(); setInterval(ask, 500); setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);`;
  try {
    return execFileSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
      encoding: 'utf8',
    }).trim();
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error).trim();
  }
}

function httpsStatusFromNetns(netns: string, url: string): string {
  const script = `require('https').get('${url}', { rejectUnauthorized: false }, (r) => { console.log(r.statusCode); process.exit(0); })
    .on('error', (e) => { console.log(e.message); process.exit(1); });`;
  try {
    return execFileSync('ip', ['netns', 'exec', netns, process.execPath, '-e', script], {
      encoding: 'utf8',
    }).trim();
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error).trim();
  }
}

async function askEnv(client: UdpEndpoint, nodePort: number): Promise<Record<string, string | undefined>> {
  // Retried: the first datagrams may beat the kube-proxy rules for a Service just created.
  for (let attempt = 0; ; attempt++) {
    await client.send(Buffer.from('env?'), nodePort, TEST_NODE_IP);
    try {
      return JSON.parse((await client.next(1000)).data.toString('utf8')) as Record<string, string>;
    } catch (error) {
      if (attempt >= 20) throw error;
    }
  }
}

function httpGet(url: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function tlsCertificateOf(host: string, port: number): Promise<string> {
  const { connect } = await import('node:tls');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      const body = der
        .toString('base64')
        .match(/.{1,64}/g)
        ?.join('\n');
      resolve(`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`);
    });
    socket.on('error', reject);
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
