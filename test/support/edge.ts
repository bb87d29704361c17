// The whole edge as real processes on loopback, for end-to-end tests and benchmarks:
// echo agent ← transceivers ← relay ← signaling, sharing one keyring and one routing table.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type RelayConfigInput,
  relayConfig,
  routingTable,
  type SignalingConfigInput,
  signalingConfig,
  type TransceiverConfigInput,
  transceiverConfig,
} from '../../local/topology.ts';
import type { SampleRate } from '../../protocol/backend.ts';
import { freeTcpPort, freeUdpPort } from './net.ts';
import { parsePrometheus, type Samples } from './prometheus.ts';
import { makeKeyring } from './relay-process.ts';
import { writeYaml } from './yaml-file.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A child process of ours that is ready once `readyUrl` answers 200. */
export class Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #output = '';
  #stdout = '';

  private constructor(name: string, command: string, args: readonly string[]) {
    this.name = name;
    this.child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-64 * 1024);
    };
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.#stdout = (this.#stdout + chunk.toString()).slice(-64 * 1024);
      keep(chunk);
    });
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /**
   * A Node script of the project. `readyStatus`: the HTTP status that means ready (the echo agent
   * answers plain HTTP with 426). `launcher`: a command prefix, e.g. `ip netns exec <ns>` to run the
   * service in a network namespace.
   */
  static start(
    name: string,
    args: string[],
    readyUrl: string,
    readyStatus = 200,
    launcher: readonly string[] = [],
  ): Promise<Service> {
    const [command, ...prefix] = [...launcher, process.execPath];
    return Service.startCommand(name, command!, [...prefix, ...args], readyUrl, readyStatus);
  }

  /** Any program (e.g. the Pipecat bot's python), ready once `readyUrl` answers `readyStatus`. */
  static async startCommand(
    name: string,
    command: string,
    args: readonly string[],
    readyUrl: string,
    readyStatus = 200,
  ): Promise<Service> {
    const service = new Service(name, command, args);
    let exitCode: number | null | undefined;
    void service.exited.then((code) => {
      exitCode = code;
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`${name} exited with ${exitCode}:\n${service.output}`);
      try {
        if ((await fetch(readyUrl)).status === readyStatus) return service;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    service.child.kill('SIGKILL');
    throw new Error(`${name} not ready within 20 s:\n${service.output}`);
  }

  /** The last 64 KiB of what it printed on stdout and stderr, interleaved. */
  get output(): string {
    return this.#output;
  }

  /** The last 64 KiB of its stdout alone. */
  get stdout(): string {
    return this.#stdout;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export interface EdgeOptions {
  readonly transceivers?: number;
  /** Sessions per transceiver. */
  readonly capacity?: number;
  readonly echoDelayMs?: number;
  /** A backend of the test's own instead of the echo agent. */
  readonly backendUrl?: string;
  /** What that backend speaks (docs/backend-protocol.md); twilio-media-streams implies 8000 Hz. */
  readonly backendProtocol?: 'voice-edge' | 'twilio-media-streams';
  readonly sampleRate?: SampleRate;
  readonly mediaTimeoutMs?: number;
  /** Extra transceiver config fields. */
  readonly transceiver?: Record<string, unknown>;
  /**
   * Node options for the transceiver processes, before the script (benchmarks: e.g. `--cpu-prof`
   * with `--cpu-prof-dir`; the profile is written when the process exits on its own, so stop it
   * with SIGTERM before `stop()`).
   */
  readonly transceiverNodeArgs?: readonly string[];
  readonly signaling?: Record<string, unknown>;
  /** The relay listens for ICE-TCP too (on relayTcpPort), and answers advertise it. */
  readonly tcp?: boolean;
  /** Extra relay config fields. */
  readonly relay?: Record<string, unknown>;
}

export interface EdgeTransceiver {
  readonly id: number;
  readonly apiUrl: string;
  readonly tunnelPort: number;
  readonly service: Service;
}

export class Edge {
  readonly dir = mkdtempSync(join(tmpdir(), 'voice-edge-e2e-'));
  readonly keyring = makeKeyring();
  /** The transceivers' internal API token (api.tokens), which signaling sends too. */
  readonly apiToken = randomBytes(32).toString('base64url');
  relayPort = 0;
  /** The relay's ICE-TCP port (with `tcp`), else 0. */
  relayTcpPort = 0;
  relayHttpPort = 0;
  #relayConfig = '';
  whipUrl = '';
  backendUrl = '';
  readonly transceivers: EdgeTransceiver[] = [];
  readonly services: Service[] = [];

  private constructor() {}

  static async start(options: EdgeOptions = {}): Promise<Edge> {
    const edge = new Edge();
    try {
      await edge.#start(options);
      return edge;
    } catch (error) {
      await edge.stop();
      throw error;
    }
  }

  #write(name: string, content: unknown): string {
    return writeYaml(this.dir, name, content);
  }

  async #start(options: EdgeOptions): Promise<void> {
    const keys = this.#write('keys.yaml', this.keyring.document);
    if (options.backendUrl !== undefined) {
      this.backendUrl = options.backendUrl;
    } else {
      const echoPort = await freeTcpPort();
      this.backendUrl = `ws://127.0.0.1:${echoPort}`;
      const args = [
        '--host',
        '127.0.0.1',
        '--port',
        String(echoPort),
        '--delay-ms',
        String(options.echoDelayMs ?? 200),
      ];
      this.services.push(
        await Service.start(
          'echo agent',
          ['agents/echo/main.ts', ...args],
          `http://127.0.0.1:${echoPort}/`,
          426,
        ),
      );
    }
    this.relayPort = await freeUdpPort();
    const relayAddress = `127.0.0.1:${this.relayPort}`;
    if (options.tcp) this.relayTcpPort = await freeTcpPort();
    const tcpRelays = options.tcp ? [`127.0.0.1:${this.relayTcpPort}`] : [];
    for (let index = 0; index < (options.transceivers ?? 1); index++) {
      const id = 100 + index;
      const tunnelPort = await freeUdpPort();
      const apiPort = await freeTcpPort();
      const config = this.#write(`transceiver-${id}.yaml`, {
        ...transceiverConfig({
          clusterId: 1,
          transceiverId: id,
          tunnel: `127.0.0.1:${tunnelPort}`,
          // The relay sends tunnel datagrams from 127.0.0.1: the only source the transceiver accepts.
          allowedRelays: ['127.0.0.1'],
          relays: [relayAddress],
          tcpRelays,
          keysFile: keys,
          backend:
            options.backendProtocol === 'twilio-media-streams'
              ? { url: this.backendUrl, protocol: 'twilio-media-streams', sampleRate: 8000 }
              : { url: this.backendUrl, sampleRate: options.sampleRate ?? 16000 },
          api: { host: '127.0.0.1', port: apiPort, token: this.apiToken },
          graceMs: 1_000,
        }),
        sessions: { max: options.capacity ?? 100, mediaTimeoutMs: options.mediaTimeoutMs ?? 15_000 },
        log: { level: 'warn' },
        ...options.transceiver,
      } satisfies TransceiverConfigInput);
      const apiUrl = `http://127.0.0.1:${apiPort}`;
      const service = await Service.start(
        `transceiver ${id}`,
        [...(options.transceiverNodeArgs ?? []), 'transceiver/main.ts', '--config', config],
        `${apiUrl}/healthz`,
      );
      this.services.push(service);
      this.transceivers.push({ id, apiUrl, tunnelPort, service });
    }
    this.writeRouting(this.transceivers.map(() => 'active'));
    const relayHttp = await freeTcpPort();
    this.relayHttpPort = relayHttp;
    const relayFile = this.#write('relay.yaml', {
      ...relayConfig({
        clusterId: 1,
        listen: relayAddress,
        tcpListen: tcpRelays,
        routingFile: 'routing.yaml',
        keysFile: 'keys.yaml',
        http: { host: '127.0.0.1', port: relayHttp },
      }),
      log: { level: 'warn' },
      flows: { newFlowsPerSourcePerSecond: 1000 },
      ...options.relay,
    } satisfies RelayConfigInput);
    this.#relayConfig = relayFile;
    this.services.push(await this.#launchRelay());
    const whipPort = await freeTcpPort();
    const opsPort = await freeTcpPort();
    const { transceivers: transceiverOptions, ...signalingOptions } = options.signaling ?? {};
    const signaling = signalingConfig({
      http: { host: '127.0.0.1', port: whipPort },
      ops: { host: '127.0.0.1', port: opsPort },
      routingFile: join(this.dir, 'routing.yaml'),
      relays: [relayAddress],
      tcpRelays,
      apiToken: this.apiToken,
    });
    const signalingFile = this.#write('signaling.yaml', {
      ...signaling,
      log: { level: 'warn' },
      transceivers: {
        ...signaling.transceivers,
        statusIntervalMs: 300,
        statusTimeoutMs: 250,
        statusStaleMs: 2_000,
        ...(transceiverOptions as Record<string, unknown> | undefined),
      },
      // Every caller of these tests is 127.0.0.1, one client to the per-client limits: wrtc.test.ts
      // alone holds 50 calls at once. The production defaults are what the local edge runs with
      // (test/e2e/security-offers.test.ts) and what signaling/whip-limits.test.ts checks.
      limits: { perClient: { offersPerMinute: 60_000, offerBurst: 1_000, maxSessions: 1_000 } },
      ...signalingOptions,
    } satisfies SignalingConfigInput);
    this.services.push(
      await Service.start(
        'signaling',
        ['signaling/main.ts', '--config', signalingFile],
        `http://127.0.0.1:${opsPort}/readyz`,
      ),
    );
    this.whipUrl = `http://127.0.0.1:${whipPort}/whip`;
  }

  /** Writes the routing table with each transceiver's state (index-aligned). */
  writeRouting(states: Array<'active' | 'draining'>, generation = Date.now() % 1_000_000_000): void {
    this.#write(
      'routing.yaml',
      routingTable(
        1,
        generation,
        this.transceivers.map((t, i) => ({
          id: t.id,
          tunnel: `127.0.0.1:${t.tunnelPort}`,
          state: states[i]!,
          api: t.apiUrl,
          ...(states[i] === 'draining' ? { drainingSince: Math.floor(Date.now() / 1000) } : {}),
        })),
      ),
    );
  }

  async relayMetrics(): Promise<Samples> {
    return parsePrometheus(await (await fetch(`http://127.0.0.1:${this.relayHttpPort}/metrics`)).text());
  }

  async transceiverMetrics(index = 0): Promise<Samples> {
    return parsePrometheus(await (await fetch(`${this.transceivers[index]!.apiUrl}/metrics`)).text());
  }

  /** A call to a transceiver's internal API with the token, as signaling and the operator make it. */
  transceiverApi(index: number, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.apiToken}`);
    return fetch(`${this.transceivers[index]!.apiUrl}${path}`, { ...init, headers });
  }

  async status(index = 0): Promise<{ sessions: number; capacity: number; state: string }> {
    return (await this.transceiverApi(index, '/status')).json() as Promise<{
      sessions: number;
      capacity: number;
      state: string;
    }>;
  }

  /** Everything the services printed (for failure messages). */
  get output(): string {
    return this.services.map((service) => `--- ${service.name}\n${service.output}`).join('\n');
  }

  #launchRelay(): Promise<Service> {
    return Service.start(
      'relay',
      ['relay/main.ts', '--config', this.#relayConfig],
      `http://127.0.0.1:${this.relayHttpPort}/readyz`,
    );
  }

  /** Kills the relay (SIGKILL, as a crash or an evicted pod) and starts it again on the same ports. */
  async restartRelay(): Promise<void> {
    const index = this.services.findIndex((service) => service.name === 'relay');
    await this.services[index]!.stop('SIGKILL');
    this.services[index] = await this.#launchRelay();
  }

  async stop(): Promise<void> {
    await Promise.all(this.services.map((service) => service.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
