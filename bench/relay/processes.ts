// The processes of one benchmark run: the reflector, coturn, voice-edge's relay and the load
// generators, each pinned to a core with taskset. Every child is registered so that any exit of the
// benchmark (error, Ctrl-C) kills exactly the processes it started.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeStun, StunAttr, StunType } from '../../protocol/stun.ts';
import { deriveIcePassword, newUfrag, RoutingKeyring } from '../../protocol/ufrag.ts';

const children = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL: used on the way out, when nothing can wait). */
export function killAllChildren(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

let tasksetAvailable: boolean | undefined;
export function hasTaskset(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' });
      tasksetAvailable = true;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last lines the process wrote to stderr, for error messages. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns `command` pinned to `cpu` (taskset execs the command, so the PID is the command's own). */
export function spawnPinned(
  name: string,
  command: string,
  args: readonly string[],
  options: { cpu: number | undefined; cwd?: string; env?: NodeJS.ProcessEnv; stdin?: boolean },
): Spawned {
  const pinned = options.cpu !== undefined && hasTaskset();
  const child = spawn(
    pinned ? 'taskset' : command,
    pinned ? ['-c', String(options.cpu), command, ...args] : [...args],
    {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    },
  );
  if (child.pid === undefined) throw new Error(`cannot start ${name} (${command})`);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const tail: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    tail.push(chunk);
    while (tail.length > 40) tail.shift();
    if (process.env.VOICE_EDGE_BENCH_DEBUG) process.stderr.write(`[${name}] ${chunk}`);
  });
  return {
    name,
    child,
    pid: child.pid,
    stderrTail: () => tail.join('').trim().split('\n').slice(-15).join('\n'),
    stop: (graceMs = 3000) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Resolves with the first stdout line, rejects if the process exits or stays silent too long. */
function firstLine(process_: Spawned, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process_.child.stdout! });
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${process_.name} printed nothing in ${timeoutMs} ms\n${process_.stderrTail()}`));
    }, timeoutMs);
    const onExit = () => {
      cleanup();
      reject(new Error(`${process_.name} exited during start-up\n${process_.stderrTail()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      process_.child.off('exit', onExit);
      lines.close();
    };
    lines.once('line', (line) => {
      cleanup();
      resolve(line);
    });
    process_.child.once('exit', onExit);
  });
}

// ---- free loopback ports --------------------------------------------------------------------

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function udpPortIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

/** A run of `count` free UDP ports below the kernel's ephemeral range (for coturn's relay ports). */
export async function freeUdpPortRange(count: number): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let free = true;
    for (let port = min; port < min + count && free; port++) free = await udpPortIsFree(port);
    if (free) return { min, max: min + count - 1 };
  }
  throw new Error(`no run of ${count} free UDP ports found in 20000-32000`);
}

// ---- reflector --------------------------------------------------------------------------------

export interface Reflector extends Spawned {
  readonly port: number;
}

export async function startReflector(binary: string, cpu: number | undefined): Promise<Reflector> {
  const spawned = spawnPinned('reflector', binary, ['--bind', '127.0.0.1'], { cpu });
  const line = await firstLine(spawned, 5000);
  const match = /^port (\d+)$/.exec(line);
  if (!match) throw new Error(`reflector said "${line}"`);
  return { ...spawned, port: Number(match[1]) };
}

// ---- coturn -----------------------------------------------------------------------------------

export interface Coturn extends Spawned {
  readonly port: number;
  readonly version: string;
}

export function coturnVersion(): string | undefined {
  try {
    return execFileSync('turnserver', ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n')[0];
  } catch {
    return undefined;
  }
}

/**
 * Starts Debian's coturn on loopback only: one UDP listener, UDP relay ports on 127.0.0.1, one relay
 * thread, anonymous access (no-auth), no TCP/TLS/DTLS listeners, no CLI (on by default, so switched
 * off), loopback peers allowed (coturn refuses them by default; the reflector is one). The web admin
 * is off by default and Debian's build has no Prometheus. `-c` replaces /etc/turnserver.conf.
 */
export async function startCoturn(options: {
  dir: string;
  cpu: number | undefined;
  relayThreads: number;
  flows: number;
}): Promise<Coturn> {
  const version = coturnVersion();
  if (version === undefined) throw new Error('turnserver not found: apt-get install coturn');
  const port = await freeUdpPort();
  const range = await freeUdpPortRange(Math.max(64, options.flows * 2 + 8));
  const config = [
    'listening-ip=127.0.0.1',
    `listening-port=${port}`,
    'relay-ip=127.0.0.1',
    `min-port=${range.min}`,
    `max-port=${range.max}`,
    `relay-threads=${options.relayThreads}`,
    'no-auth',
    'allow-loopback-peers',
    'no-tcp',
    'no-tls',
    'no-dtls',
    'no-tcp-relay',
    'no-cli',
    'no-rfc5780',
    'no-stun-backward-compatibility',
    'no-software-attribute',
    `userdb=${join(options.dir, 'turndb')}`,
    `pidfile=${join(options.dir, 'turnserver.pid')}`,
    `log-file=${join(options.dir, 'turnserver.log')}`,
    'simple-log',
    'no-stdout-log',
    '',
  ].join('\n');
  const file = join(options.dir, 'turnserver.conf');
  writeFileSync(file, config);
  const spawned = spawnPinned('turnserver', 'turnserver', ['-c', file], { cpu: options.cpu });
  await waitFor('turnserver', spawned, 10_000, () => stunPing(port));
  return { ...spawned, port, version };
}

/** True when a STUN Binding request to 127.0.0.1:port gets any STUN answer within 200 ms. */
function stunPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const transactionId = randomBytes(12);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 200);
    socket.on('error', () => done(false));
    socket.on('message', (message) =>
      done(message.length >= 20 && message.subarray(8, 20).equals(transactionId)),
    );
    socket.send(encodeStun({ type: StunType.BindingRequest, transactionId }), port, '127.0.0.1');
  });
}

async function waitFor(
  name: string,
  spawned: Spawned,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) {
      throw new Error(`${name} exited during start-up\n${spawned.stderrTail()}`);
    }
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} not ready after ${timeoutMs} ms\n${spawned.stderrTail()}`);
}

// ---- voice-edge relay --------------------------------------------------------------------------

export const BENCH_CLUSTER_ID = 1;
export const BENCH_TRANSCEIVER_ID = 7;

export interface Relay extends Spawned {
  readonly port: number;
  /** Its ICE-TCP port. */
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly keyring: RoutingKeyring;
}

/** Writes config, routing table and keyring into `dir` and starts `node relay/main.ts` on them. */
export async function startRelay(options: {
  dir: string;
  repoRoot: string;
  cpu: number | undefined;
  reflectorPort: number;
  workers: number;
  nodeArgs: readonly string[];
}): Promise<Relay> {
  const secret = randomBytes(32);
  const keyring = new RoutingKeyring([{ id: 1, secret }]);
  const port = await freeUdpPort();
  const tcpPort = await freeTcpPort();
  const httpPort = await freeTcpPort();
  writeFileSync(
    join(options.dir, 'keys.yaml'),
    `keys:\n  - id: 1\n    secret: ${secret.toString('base64')}\n`,
  );
  writeFileSync(
    join(options.dir, 'routing.yaml'),
    [
      `clusterId: ${BENCH_CLUSTER_ID}`,
      'generation: 1',
      'transceivers:',
      `  - { id: ${BENCH_TRANSCEIVER_ID}, tunnel: "127.0.0.1:${options.reflectorPort}", state: active }`,
      '',
    ].join('\n'),
  );
  const configFile = join(options.dir, 'relay.yaml');
  writeFileSync(
    configFile,
    [
      `clusterId: ${BENCH_CLUSTER_ID}`,
      `listen: ["127.0.0.1:${port}"]`,
      `tcp: { listen: ["127.0.0.1:${tcpPort}"] }`,
      `workers: ${options.workers}`,
      'tunnel: { bindV4: 127.0.0.1 }',
      'routingTable: { file: routing.yaml }',
      'routingKeys: { file: keys.yaml }',
      `http: { host: 127.0.0.1, port: ${httpPort} }`,
      'log: { level: warn }',
      'flows: { newFlowsPerSourcePerSecond: 1000 }',
      'shutdown: { drainMs: 0 }',
      '',
    ].join('\n'),
  );
  const spawned = spawnPinned(
    'relay',
    process.execPath,
    [...options.nodeArgs, join(options.repoRoot, 'relay/main.ts'), '--config', configFile],
    { cpu: options.cpu, cwd: options.repoRoot },
  );
  await waitFor('relay', spawned, 20_000, async () => {
    try {
      const response = await fetch(`http://127.0.0.1:${httpPort}/readyz`, {
        signal: AbortSignal.timeout(500),
      });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  });
  return { ...spawned, port, tcpPort, httpPort, keyring };
}

/**
 * The first packet of a flow as a browser sends it: a STUN Binding request with USERNAME
 * `serverUfrag:clientUfrag`, PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY keyed with the ICE password
 * derived from the server ufrag, and FINGERPRINT. Each call is a new session (new server ufrag).
 */
export function bindingRequestForNewSession(keyring: RoutingKeyring): Buffer {
  const serverUfrag = newUfrag(keyring, { clusterId: BENCH_CLUSTER_ID, transceiverId: BENCH_TRANSCEIVER_ID });
  const clientUfrag = randomBytes(3).toString('hex');
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(1845501695); // a prflx candidate's priority, as Chrome computes it
  return encodeStun({
    type: StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes: [
      { type: StunAttr.Username, value: Buffer.from(`${serverUfrag}:${clientUfrag}`, 'latin1') },
      { type: StunAttr.Priority, value: priority },
      { type: StunAttr.IceControlling, value: randomBytes(8) },
    ],
    integrityKey: deriveIcePassword(serverUfrag, keyring.current),
    fingerprint: true,
  });
}

// ---- load generator --------------------------------------------------------------------------

export interface LoadgenReady {
  readonly ready: true;
  readonly mode: string;
  readonly flows: number;
  readonly size: number;
  readonly ports: number[];
}

export interface RttSummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** One step's report from loadgen.c (times in ns unless named otherwise). */
export interface LoadgenStep {
  readonly step: number;
  readonly rate: number;
  readonly duration_ms: number;
  readonly planned: number;
  readonly sent: number;
  readonly send_errors: number;
  readonly received: number;
  readonly duplicates: number;
  readonly stale: number;
  readonly foreign: number;
  readonly stun_echoes: number;
  readonly receive_errors: number;
  readonly send_elapsed_ms: number;
  readonly max_backlog: number;
  readonly flow_received_min: number;
  readonly flow_received_max: number;
  readonly rtt_ns: RttSummary;
}

export interface StepCommand {
  readonly rate: number;
  readonly durationMs: number;
  readonly drainMs: number;
  readonly tickUs: number;
}

export class Loadgen {
  readonly spawned: Spawned;
  readonly ready: LoadgenReady;
  #nextStep = 1;
  readonly #lines: string[] = [];
  #waiter: ((line: string | undefined) => void) | undefined;
  #closed = false;

  private constructor(spawned: Spawned, ready: LoadgenReady, lines: ReturnType<typeof createInterface>) {
    this.spawned = spawned;
    this.ready = ready;
    lines.on('line', (line) => {
      if (this.#waiter) {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        waiter(line);
      } else this.#lines.push(line);
    });
    spawned.child.once('exit', () => {
      this.#closed = true;
      this.#waiter?.(undefined);
    });
  }

  static async start(
    binary: string,
    args: readonly string[],
    cpu: number | undefined,
    name: string,
    setupTimeoutMs = 30_000,
  ): Promise<Loadgen> {
    const spawned = spawnPinned(name, binary, args, { cpu, stdin: true });
    const lines = createInterface({ input: spawned.child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${name}: no ready line after ${setupTimeoutMs} ms\n${spawned.stderrTail()}`));
      }, setupTimeoutMs);
      const onExit = () => {
        clearTimeout(timer);
        // Give the stderr pipe a moment to deliver the reason.
        setTimeout(() => reject(new Error(`${name} failed during setup:\n${spawned.stderrTail()}`)), 50);
      };
      spawned.child.once('exit', onExit);
      lines.once('line', (line) => {
        clearTimeout(timer);
        spawned.child.off('exit', onExit);
        resolve(line);
      });
    });
    const ready = JSON.parse(first) as LoadgenReady;
    if (ready.ready !== true) throw new Error(`${name}: unexpected first line ${first}`);
    return new Loadgen(spawned, ready, lines);
  }

  #readLine(timeoutMs: number): Promise<string> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed)
      return Promise.reject(new Error(`${this.spawned.name} has exited\n${this.spawned.stderrTail()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`${this.spawned.name}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (line) => {
        clearTimeout(timer);
        if (line === undefined)
          reject(new Error(`${this.spawned.name} has exited\n${this.spawned.stderrTail()}`));
        else resolve(line);
      };
    });
  }

  async step(command: StepCommand): Promise<LoadgenStep> {
    const id = this.#nextStep++;
    const rate = Math.round(command.rate);
    this.spawned.child.stdin!.write(
      `step ${id} ${rate} ${Math.round(command.durationMs)} ${Math.round(command.drainMs)} ${Math.round(command.tickUs)}\n`,
    );
    const line = await this.#readLine(command.durationMs * 3 + command.drainMs + 10_000);
    const result = JSON.parse(line) as LoadgenStep;
    if (result.step !== id)
      throw new Error(`${this.spawned.name}: answer for step ${result.step}, expected ${id}`);
    return result;
  }

  /** Asks the load generator to quit (it releases its TURN allocations), then makes sure it did. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.spawned.child.stdin!.end('quit\n');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1500);
        this.spawned.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.spawned.stop(2000);
  }
}
