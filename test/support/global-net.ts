// Simulated regions for the global relay tier's tests and benchmark (docs/global-tier.md): network
// namespaces made by the test itself, joined by veth pairs through one router namespace whose
// traffic between sites passes a userspace delay/loss element (wan/wan-router.ts on a TUN device;
// this kernel has no netem qdisc). The user sits behind a NAT (iptables MASQUERADE, random ports,
// so a conntrack flush gives it a new public address).
//
//   veg-user 10.77.1.2 ─ 10.77.1.1 veg-nat 198.18.1.2 ─┐
//   veg-edge 198.18.2.2 ─────────────────────────────── ├─ veg-wan (TUN veg-tun: delay, jitter, loss)
//   veg-c1   198.18.3.2 ─────────────────────────────── │        10.77.0.2 ─ 10.77.0.1 root (tests)
//   veg-c2   198.18.4.2 ─────────────────────────────── ┘
//
// Everything is named `veg-*` and lives in 10.77.0.0/16 and 198.18.0.0/16; the root namespace gets
// one veth and one route (198.18.0.0/16) so the test process can reach the services' HTTP ports.
// A crashed run's leftovers are swept at the next start; a run still alive is refused (pid file).
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { addExitCleanup } from '../kube/exit-cleanup.ts';
import { buildTunOpen } from './wan/build.ts';
import type { LinkSpec, WanSpec } from './wan/link-scheduler.ts';

export const PREFIX = 'veg-';
const PID_FILE = join(tmpdir(), 'voice-edge-veg.pid');
const ROUTER = fileURLToPath(new URL('./wan/wan-router.ts', import.meta.url));

/** The namespaces and their addresses. */
export const NS = {
  user: 'veg-user',
  nat: 'veg-nat',
  wan: 'veg-wan',
  edge: 'veg-edge',
  c1: 'veg-c1',
  c2: 'veg-c2',
} as const;
export type Site = 'user' | 'edge' | 'c1' | 'c2';

export const ADDRESS = {
  user: '10.77.1.2',
  /** The NAT's public address: what everyone else sees of the user. */
  natPublic: '198.18.1.2',
  edge: '198.18.2.2',
  c1: '198.18.3.2',
  c2: '198.18.4.2',
} as const;

export interface Distances {
  /** user ↔ edge relay: near. */
  readonly userEdge: LinkSpec;
  /** edge ↔ each cluster: the backbone. */
  readonly edgeCluster: LinkSpec;
  /** user ↔ each cluster directly: far, over the public internet. */
  readonly userCluster: LinkSpec;
  readonly seed: number;
}

/** The distances of the tests and of `npm run bench:global` (one way; RTT is twice). */
export const DEFAULT_DISTANCES: Distances = {
  userEdge: { delayMs: 5, jitterMs: 1, lossPercent: 0 },
  edgeCluster: { delayMs: 35, jitterMs: 1, lossPercent: 0 },
  userCluster: { delayMs: 60, jitterMs: 12, lossPercent: 3 },
  seed: 20_260_314,
};

export function wanSpecFor(distances: Distances): WanSpec {
  return {
    seed: distances.seed,
    sites: [
      { name: 'user', networks: ['198.18.1.0/24'] },
      { name: 'edge', networks: ['198.18.2.0/24'] },
      { name: 'c1', networks: ['198.18.3.0/24'] },
      { name: 'c2', networks: ['198.18.4.0/24'] },
    ],
    links: [
      { a: 'user', b: 'edge', ab: distances.userEdge },
      { a: 'edge', b: 'c1', ab: distances.edgeCluster },
      { a: 'edge', b: 'c2', ab: distances.edgeCluster },
      { a: 'user', b: 'c1', ab: distances.userCluster },
      { a: 'user', b: 'c2', ab: distances.userCluster },
      { a: 'c1', b: 'c2', ab: distances.edgeCluster },
    ],
  };
}

function run(command: string, args: readonly string[], options: { ignoreErrors?: boolean } = {}): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if (options.ignoreErrors) return '';
    const err = error as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

function ip(...args: string[]): string {
  return run('ip', args);
}

function inNs(ns: string, command: string, ...args: string[]): string {
  return run('ip', ['netns', 'exec', ns, command, ...args]);
}

/** Why these tests cannot run here, or undefined. */
export function missingPrerequisites(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'the global relay tier tests make network namespaces and need root (CI runs as root)';
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['iptables', 'iptables'],
    ['conntrack', 'conntrack'],
    ['setpriv', 'util-linux'],
  ] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing: apt-get install ${pkg}`;
    }
  }
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (the WAN emulator needs TUN)';
  return undefined;
}

/** Removes every veg-* namespace and the root veth/route (a crashed run's leftovers). */
export function sweep(): void {
  const list = run('ip', ['netns', 'list'], { ignoreErrors: true });
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(PREFIX)) {
      // Processes still inside (a crashed run's services) would keep the namespace's sockets alive.
      const pids = run('ip', ['netns', 'pids', name], { ignoreErrors: true }).split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      run('ip', ['netns', 'del', name], { ignoreErrors: true });
    }
  }
  run('ip', ['route', 'del', '198.18.0.0/16', 'via', '10.77.0.2'], { ignoreErrors: true });
  run('ip', ['link', 'del', 'veg-m0'], { ignoreErrors: true });
}

function claim(): void {
  if (existsSync(PID_FILE)) {
    const pid = Number(readFileSync(PID_FILE, 'utf8'));
    let alive = false;
    try {
      if (pid > 0 && pid !== process.pid) {
        process.kill(pid, 0);
        alive = true;
      }
    } catch {
      // dead: its leftovers are swept below
    }
    if (alive)
      throw new Error(
        `another global relay tier run (pid ${pid}) owns the veg-* namespaces; wait for it to end (${PID_FILE})`,
      );
  }
  writeFileSync(PID_FILE, String(process.pid));
}

function releaseClaim(): void {
  try {
    if (readFileSync(PID_FILE, 'utf8') === String(process.pid)) rmSync(PID_FILE, { force: true });
  } catch {
    // not ours, or already gone
  }
}

export class GlobalNet {
  readonly distances: Distances;
  #router: ChildProcess | undefined;
  #routerOutput = '';
  readonly #children = new Set<ChildProcess>();
  #forgetCleanup: () => void = () => {};

  private constructor(distances: Distances) {
    this.distances = distances;
  }

  /** Builds the namespaces and starts the WAN emulator. Throws with a clear reason if it cannot. */
  static async create(distances: Distances = DEFAULT_DISTANCES): Promise<GlobalNet> {
    const missing = missingPrerequisites();
    if (missing !== undefined) throw new Error(missing);
    const tunOpen = buildTunOpen();
    claim();
    sweep();
    const net = new GlobalNet(distances);
    // A test process that exits without destroy() (a failed `before`, an uncaught error) still
    // removes the namespaces; one killed outright leaves them to the next start's sweep.
    net.#forgetCleanup = addExitCleanup(() => {
      for (const child of net.#children) child.kill('SIGKILL');
      net.#router?.kill('SIGKILL');
      sweep();
      releaseClaim();
    });
    try {
      net.#build();
      await net.#startRouter(tunOpen);
      return net;
    } catch (error) {
      await net.destroy();
      throw error;
    }
  }

  #build(): void {
    for (const ns of Object.values(NS)) {
      ip('netns', 'add', ns);
      inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    const veth = (a: string, nsA: string, b: string, nsB: string | undefined) =>
      nsB === undefined
        ? ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b)
        : ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    const addr = (ns: string, dev: string, cidr: string) => {
      inNs(ns, 'ip', 'addr', 'add', cidr, 'dev', dev);
      inNs(ns, 'ip', 'link', 'set', dev, 'up');
    };
    // user ─ nat
    veth('veg-u0', NS.user, 'veg-n0', NS.nat);
    addr(NS.user, 'veg-u0', '10.77.1.2/24');
    addr(NS.nat, 'veg-n0', '10.77.1.1/24');
    inNs(NS.user, 'ip', 'route', 'add', 'default', 'via', '10.77.1.1');
    // sites ─ wan
    const sites: Array<[string, string, string, number]> = [
      [NS.nat, 'veg-n1', 'veg-w1', 1],
      [NS.edge, 'veg-e0', 'veg-w2', 2],
      [NS.c1, 'veg-c0', 'veg-w3', 3],
      [NS.c2, 'veg-d0', 'veg-w4', 4],
    ];
    for (const [ns, inner, outer, index] of sites) {
      veth(inner, ns, outer, NS.wan);
      addr(ns, inner, `198.18.${index}.2/24`);
      addr(NS.wan, outer, `198.18.${index}.1/24`);
      inNs(ns, 'ip', 'route', 'add', 'default', 'via', `198.18.${index}.1`);
    }
    // The NAT: the user's packets leave with the NAT's address and a random port per mapping.
    inNs(NS.nat, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    inNs(
      NS.nat,
      'iptables',
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-o',
      'veg-n1',
      '-j',
      'MASQUERADE',
      '--random-fully',
    );
    // The router: everything arriving from a site goes to the TUN device (the emulator), and what
    // the emulator writes back is routed normally.
    inNs(NS.wan, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    inNs(NS.wan, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0');
    inNs(NS.wan, 'sysctl', '-qw', 'net.ipv4.conf.default.rp_filter=0');
    inNs(NS.wan, 'ip', 'tuntap', 'add', 'dev', 'veg-tun', 'mode', 'tun');
    inNs(NS.wan, 'ip', 'link', 'set', 'veg-tun', 'up');
    inNs(NS.wan, 'sysctl', '-qw', 'net.ipv4.conf.veg-tun.rp_filter=0');
    inNs(NS.wan, 'ip', 'route', 'add', 'default', 'dev', 'veg-tun', 'table', '100');
    for (const [, , outer] of sites) {
      inNs(NS.wan, 'ip', 'rule', 'add', 'iif', outer, 'lookup', '100', 'priority', '100');
    }
    // The test process (root namespace) reaches the sites' addresses through the router, undelayed.
    ip('link', 'add', 'veg-m0', 'type', 'veth', 'peer', 'name', 'veg-wm', 'netns', NS.wan);
    ip('addr', 'add', '10.77.0.1/30', 'dev', 'veg-m0');
    ip('link', 'set', 'veg-m0', 'up');
    addr(NS.wan, 'veg-wm', '10.77.0.2/30');
    ip('route', 'add', '198.18.0.0/16', 'via', '10.77.0.2', 'dev', 'veg-m0');
  }

  async #startRouter(tunOpen: string): Promise<void> {
    const [launch, ...prefix] = this.launcher(NS.wan);
    const router = spawn(
      launch!,
      [...prefix, tunOpen, 'veg-tun', process.execPath, ROUTER, JSON.stringify(wanSpecFor(this.distances))],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#router = router;
    const keep = (chunk: Buffer) => {
      this.#routerOutput = (this.#routerOutput + chunk.toString()).slice(-16 * 1024);
    };
    router.stdout!.on('data', keep);
    router.stderr!.on('data', keep);
    const deadline = Date.now() + 10_000;
    while (!this.#routerOutput.includes('ready')) {
      if (router.exitCode !== null) throw new Error(`the WAN emulator exited: ${this.#routerOutput}`);
      if (Date.now() > deadline) throw new Error(`the WAN emulator did not start: ${this.#routerOutput}`);
      await sleep(20);
    }
  }

  /** Runs a command inside a namespace and waits for it: stdout, or an error with stderr. */
  exec(ns: string, command: string, ...args: string[]): string {
    return inNs(ns, command, ...args);
  }

  /** Starts a long-running process inside a namespace (stopped by destroy() at the latest). */
  spawn(ns: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const [launch, ...prefix] = this.launcher(ns);
    const child = spawn(launch!, [...prefix, command, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /**
   * The launcher prefix for Service.start and friends: `ip netns exec <ns>`, and `setpriv
   * --pdeathsig KILL` so that the process dies with the test process even if that is killed.
   */
  launcher(ns: string): string[] {
    return ['ip', 'netns', 'exec', ns, 'setpriv', '--pdeathsig', 'KILL'];
  }

  /** Forgets every NAT mapping: the user's next packets leave from a new public port. */
  flushNat(): void {
    inNs(NS.nat, 'conntrack', '-F');
  }

  /** The NAT's current UDP mappings (public ports of the user's flows). */
  natMappings(): string {
    return run('ip', ['netns', 'exec', NS.nat, 'conntrack', '-L', '-p', 'udp'], { ignoreErrors: true });
  }

  get routerOutput(): string {
    return this.#routerOutput;
  }

  /** Stops every process started here, deletes the namespaces, the root veth and route. */
  async destroy(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    const router = this.#router;
    if (router && router.exitCode === null && router.signalCode === null) {
      const exited = new Promise((resolve) => router.once('exit', resolve));
      router.kill('SIGTERM');
      await Promise.race([exited, sleep(2_000)]);
      router.kill('SIGKILL');
    }
    sweep();
    releaseClaim();
    this.#forgetCleanup();
  }
}
