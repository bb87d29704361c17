// The test node's pod network, on the host: a Linux bridge holding the node IP 10.88.0.1/16, and per pod
// a network namespace joined to it by a veth pair (eth0 inside, default route via the node IP). Plus our
// own iptables chains for the mini kube-proxy (service-rules.ts renders their content).
//
// 10.88.0.1/16 can exist once per host, so one test kubelet at a time owns it: a kernel file lock (flock)
// held for the kubelet's lifetime and released by the kernel when its process dies. Whoever takes the
// lock next sweeps whatever a dead holder left behind (everything named with the `vek` prefix).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Ipv4Pool } from './ip-pool.ts';
import type { ConntrackDeletion, ProxyChains } from './service-rules.ts';

const run = promisify(execFile);

/** Every host object the test kubelet creates is named with this prefix. */
export const NETWORK_PREFIX = 'vek';
export const BRIDGE = `${NETWORK_PREFIX}br0`;
export const PROXY_CHAINS: ProxyChains = {
  services: 'VEK-SERVICES',
  postrouting: 'VEK-POSTROUTING',
  forward: 'VEK-FORWARD',
};
const lockFile = '/run/lock/voice-edge-test-kubelet.lock';
const jumps: ReadonlyArray<[table: string, chain: string, target: string]> = [
  ['nat', 'PREROUTING', PROXY_CHAINS.services],
  ['nat', 'OUTPUT', PROXY_CHAINS.services],
  ['nat', 'POSTROUTING', PROXY_CHAINS.postrouting],
  ['filter', 'FORWARD', PROXY_CHAINS.forward],
];

export interface PodSandbox {
  /** Network namespace name (`ip netns exec <netns> …`). */
  readonly netns: string;
  readonly ip: string;
}

export class PodNetwork {
  readonly nodeIP: string;
  readonly podCidr: string;
  readonly #lock: ChildProcess;
  readonly #pool: Ipv4Pool;
  readonly #sandboxes = new Map<string, PodSandbox>();
  #closed = false;

  private constructor(nodeIP: string, podCidr: string, lock: ChildProcess) {
    this.nodeIP = nodeIP;
    this.podCidr = podCidr;
    this.#lock = lock;
    this.#pool = new Ipv4Pool(podCidr, [nodeIP]);
  }

  static async create(options: {
    nodeIP: string;
    podCidr: string;
    log: (message: string) => void;
  }): Promise<PodNetwork> {
    if (process.getuid?.() !== 0) {
      throw new Error(
        'test kubelet: the pod network (bridge, network namespaces, iptables) needs root; run the Kubernetes tests as root',
      );
    }
    for (const tool of ['ip', 'iptables', 'iptables-restore', 'conntrack', 'setpriv', 'flock']) {
      await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(
          `test kubelet: ${tool} is missing; install it: apt-get install iproute2 iptables conntrack util-linux`,
        );
      });
    }
    const lock = await takeNodeLock(options.log);
    const network = new PodNetwork(options.nodeIP, options.podCidr, lock);
    try {
      sweepPodNetwork();
      const prefix = options.podCidr.split('/')[1];
      await ip('link', 'add', BRIDGE, 'type', 'bridge');
      await ip('addr', 'add', `${options.nodeIP}/${prefix}`, 'dev', BRIDGE);
      await ip('link', 'set', BRIDGE, 'up');
      // Pod → node IP:nodePort / ClusterIP → another pod is routed through the node: let this bridge
      // (only this one: the host's global ip_forward stays as it is) forward.
      await writeFile(`/proc/sys/net/ipv4/conf/${BRIDGE}/forwarding`, '1');
      const chains = new Set(jumps.map(([table, , target]) => `${table} ${target}`));
      for (const entry of chains) {
        const [table, target] = entry.split(' ') as [string, string];
        await iptables('-t', table, '-N', target);
      }
      for (const [table, chain, target] of jumps) await iptables('-t', table, '-I', chain, '1', '-j', target);
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  get sandboxes(): ReadonlyMap<string, PodSandbox> {
    return this.#sandboxes;
  }

  /** A network namespace for pod `uid`, on the bridge, with an address from the pod CIDR. */
  async addPod(uid: string): Promise<PodSandbox> {
    const id = uid.replace(/-/g, '').slice(0, 8);
    const sandbox = { netns: `${NETWORK_PREFIX}-${id}`, ip: this.#pool.allocate() };
    this.#sandboxes.set(uid, sandbox);
    const host = `${NETWORK_PREFIX}h${id}`;
    const peer = `${NETWORK_PREFIX}p${id}`;
    const prefix = this.podCidr.split('/')[1];
    try {
      await ip('netns', 'add', sandbox.netns);
      await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
      await ip('link', 'set', peer, 'netns', sandbox.netns);
      await ip('link', 'set', host, 'master', BRIDGE, 'up');
      // With br_netfilter, a pod reaching a Service that picks the pod itself is DNATed on the bridge
      // and must leave through the port it came in by (what kube-proxy calls hairpin mode).
      await ip('link', 'set', host, 'type', 'bridge_slave', 'hairpin', 'on');
      await ip('-n', sandbox.netns, 'link', 'set', peer, 'name', 'eth0');
      await ip('-n', sandbox.netns, 'addr', 'add', `${sandbox.ip}/${prefix}`, 'dev', 'eth0');
      await ip('-n', sandbox.netns, 'link', 'set', 'eth0', 'up');
      await ip('-n', sandbox.netns, 'link', 'set', 'lo', 'up');
      await ip('-n', sandbox.netns, 'route', 'add', 'default', 'via', this.nodeIP);
    } catch (error) {
      await this.removePod(uid);
      throw error;
    }
    return sandbox;
  }

  /** Deletes the pod's namespace (its veth goes with it) and frees its address. */
  async removePod(uid: string): Promise<void> {
    const sandbox = this.#sandboxes.get(uid);
    if (!sandbox) return;
    this.#sandboxes.delete(uid);
    await ip('netns', 'del', sandbox.netns).catch(() => {});
    const id = sandbox.netns.slice(NETWORK_PREFIX.length + 1);
    await ip('link', 'del', `${NETWORK_PREFIX}h${id}`).catch(() => {});
    this.#pool.release(sandbox.ip);
  }

  /** Replaces the content of our iptables chains in one iptables-restore transaction. */
  async applyRules(rules: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('iptables-restore', ['--noflush', '-w', '5'], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      child.once('error', reject);
      child.once('close', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`iptables-restore failed (${code}): ${stderr.trim()}\n${rules}`)),
      );
      child.stdin.end(rules);
    });
  }

  async deleteConntrack(entry: ConntrackDeletion): Promise<void> {
    const args = [
      '-D',
      '-p',
      entry.protocol,
      '--orig-dst',
      entry.origDst,
      '--orig-port-dst',
      String(entry.origPortDst),
    ];
    if (entry.replySrc) args.push('--reply-src', entry.replySrc);
    // Exit 1 with "0 flow entries have been deleted" is the common case, not an error.
    await run('conntrack', args).catch(() => {});
  }

  /** Removes every namespace, link and rule, then lets go of the node lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sandboxes.clear();
    try {
      sweepPodNetwork();
    } finally {
      this.#lock.stdin?.end();
      this.#lock.kill();
    }
  }
}

/**
 * `flock` holds the lock while `cat` waits on our stdin: our death closes the pipe, cat exits and the
 * kernel drops the lock, whatever killed us.
 */
async function takeNodeLock(log: (message: string) => void): Promise<ChildProcess> {
  const child = spawn(
    'flock',
    ['--exclusive', '--wait', '600', lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const waiting = setTimeout(
    () => log(`test kubelet: waiting for another test kubelet on this machine to finish (lock ${lockFile})`),
    2000,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(
          new Error(
            `test kubelet: another test kubelet held the node for 10 minutes (lock ${lockFile}, flock exit ${code})`,
          ),
        ),
      );
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (d.includes('locked')) resolve();
      });
    });
  } finally {
    clearTimeout(waiting);
  }
  child.removeAllListeners('exit');
  // Held for the kubelet's lifetime, but must not keep a test process alive on its own.
  child.stdout?.destroy();
  child.stderr?.destroy();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  child.unref();
  return child;
}

/**
 * Deletes everything the test kubelet may have created (ours or a dead run's). Synchronous, so that the
 * process-exit handler can run it too.
 */
export function sweepPodNetwork(): void {
  const quiet = { stdio: 'ignore' } as const;
  const attempt = (command: string, args: string[]) => {
    try {
      execFileSync(command, args, quiet);
      return true;
    } catch {
      return false;
    }
  };
  for (const [table, chain, target] of jumps) {
    // -D removes one occurrence; loop in case an interrupted start inserted two.
    while (attempt('iptables', ['-w', '5', '-t', table, '-D', chain, '-j', target])) {}
    attempt('iptables', ['-w', '5', '-t', table, '-F', target]);
    attempt('iptables', ['-w', '5', '-t', table, '-X', target]);
  }
  let namespaces: string[] = [];
  try {
    namespaces = readdirSync('/run/netns');
  } catch {}
  for (const netns of namespaces.filter((name) => name.startsWith(`${NETWORK_PREFIX}-`))) {
    attempt('ip', ['netns', 'del', netns]);
  }
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const match of links.matchAll(/^\d+: ([^:@\s]+)/gm)) {
    const name = match[1]!;
    if (name === BRIDGE || new RegExp(`^${NETWORK_PREFIX}[hp][0-9a-f]{8}$`).test(name))
      attempt('ip', ['link', 'del', name]);
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (error) {
    throw new Error(`ip ${args.join(' ')}: ${(error as { stderr?: string }).stderr?.trim() || error}`);
  }
}

async function iptables(...args: string[]): Promise<void> {
  try {
    await run('iptables', ['-w', '5', ...args]);
  } catch (error) {
    throw new Error(`iptables ${args.join(' ')}: ${(error as { stderr?: string }).stderr?.trim() || error}`);
  }
}
