// The global relay tier as real processes in simulated regions (global-net.ts): two clusters
// (`veg-c1`, `veg-c2`: echo agent ← transceiver ← cluster relay each), an edge site (`veg-edge`:
// Redis, the edge relay, signaling) and a user behind a NAT (`veg-user`), all sharing one keyring.
//
//   user ──5 ms── edge relay ──35 ms backbone── cluster relay → transceiver → echo agent
//     └──────────────── 60 ms ±12, 3 % loss (direct) ─────────┘
//
// Signaling knows both clusters (us-east, us-west) and the edge relay (region eu, callers from the
// NAT's public range): a call from the user goes through the edge; a call that says
// `X-Voice-Edge-Region: us-east` goes straight to cluster 1's relay.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallFigures } from '../../cli/caller.ts';
import {
  type RelayConfigInput,
  type RoutingTableInput,
  relayConfig,
  routingTable,
  type SignalingConfigInput,
  type TransceiverConfigInput,
  transceiverConfig,
} from '../../local/topology.ts';
import { Service } from './edge.ts';
import { ADDRESS, DEFAULT_DISTANCES, type Distances, GlobalNet, NS } from './global-net.ts';
import { parsePrometheus, type Samples } from './prometheus.ts';
import { RedisServer } from './redis-server.ts';
import { makeKeyring } from './relay-process.ts';
import { writeYaml } from './yaml-file.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

export type ClusterName = 'c1' | 'c2';
const CLUSTERS: Record<ClusterName, { id: number; region: string; address: string; ns: string }> = {
  c1: { id: 1, region: 'us-east', address: ADDRESS.c1, ns: NS.c1 },
  c2: { id: 2, region: 'us-west', address: ADDRESS.c2, ns: NS.c2 },
};
export const RELAY_PORT = 3478;
const TRANSCEIVER_ID = 100;

export interface GlobalEdgeOptions {
  readonly distances?: Distances;
  /** Sessions per transceiver (one transceiver per cluster). */
  readonly capacity?: Partial<Record<ClusterName, number>>;
  /** Echo agent delay (ms). */
  readonly echoDelayMs?: number;
}

export class GlobalEdge {
  readonly net: GlobalNet;
  readonly dir = mkdtempSync(join(tmpdir(), 'voice-edge-global-'));
  readonly keyring = makeKeyring();
  /** Each cluster's transceiver API token: signaling sends c1's as the shared one, c2's as its own. */
  readonly apiTokens: Record<ClusterName, string> = {
    c1: randomBytes(32).toString('base64url'),
    c2: randomBytes(32).toString('base64url'),
  };
  readonly services = new Map<string, Service>();
  redis: RedisServer | undefined;
  readonly whipUrl = `http://${ADDRESS.edge}:8080/whip`;

  private constructor(net: GlobalNet) {
    this.net = net;
  }

  static async start(options: GlobalEdgeOptions = {}): Promise<GlobalEdge> {
    const net = await GlobalNet.create(options.distances ?? DEFAULT_DISTANCES);
    const edge = new GlobalEdge(net);
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

  async #service(
    key: string,
    ns: string,
    args: string[],
    readyUrl: string,
    readyStatus = 200,
  ): Promise<Service> {
    const service = await Service.start(key, args, readyUrl, readyStatus, this.net.launcher(ns));
    this.services.set(key, service);
    return service;
  }

  async #start(options: GlobalEdgeOptions): Promise<void> {
    this.#write('keys.yaml', this.keyring.document);
    await Promise.all(
      (Object.keys(CLUSTERS) as ClusterName[]).map((name) => this.#startCluster(name, options)),
    );
    this.redis = await RedisServer.start({
      host: ADDRESS.edge,
      port: 6379,
      launcher: this.net.launcher(NS.edge),
    });
    await this.startEdgeRelay();
    const signaling = this.#write('signaling.yaml', {
      http: { host: ADDRESS.edge, port: 8080 },
      ops: { host: ADDRESS.edge, port: 9091 },
      clusters: (Object.keys(CLUSTERS) as ClusterName[]).map((name) => ({
        clusterId: CLUSTERS[name].id,
        region: CLUSTERS[name].region,
        routingTable: { file: `routing-${name}.yaml` },
        relays: [`${CLUSTERS[name].address}:${RELAY_PORT}`],
        ...(name === 'c1' ? {} : { apiTokens: [this.apiTokens[name]] }),
      })),
      edgeRelays: [
        {
          region: 'eu',
          relays: [`${ADDRESS.edge}:${RELAY_PORT}`],
          // ICE-TCP at the edge: forwarded to the clusters over the UDP tunnel.
          tcpRelays: [`${ADDRESS.edge}:${RELAY_PORT}`],
          clientCidrs: ['198.18.1.0/24'],
        },
      ],
      region: { nearest: { eu: ['us-east', 'us-west'] } },
      // Status polls cross the 35 ms backbone.
      transceivers: {
        statusIntervalMs: 300,
        statusTimeoutMs: 250,
        statusStaleMs: 2_000,
        requestTimeoutMs: 5_000,
        apiTokens: [this.apiTokens.c1],
      },
      log: { level: 'warn' },
      shutdown: { drainMs: 0 },
    } satisfies SignalingConfigInput);
    await this.#service(
      'signaling',
      NS.edge,
      ['signaling/main.ts', '--config', signaling],
      `http://${ADDRESS.edge}:9091/readyz`,
    );
  }

  async #startCluster(name: ClusterName, options: GlobalEdgeOptions): Promise<void> {
    const { id, address, ns } = CLUSTERS[name];
    await this.#service(
      `echo agent ${name}`,
      ns,
      [
        'agents/echo/main.ts',
        '--host',
        address,
        '--port',
        '8765',
        '--delay-ms',
        String(options.echoDelayMs ?? 200),
      ],
      `http://${address}:8765/`,
      426,
    );
    const transceiver = this.#write(`transceiver-${name}.yaml`, {
      ...transceiverConfig({
        clusterId: id,
        transceiverId: TRANSCEIVER_ID,
        tunnel: `${address}:7000`,
        // The cluster's relay runs in the same namespace: its tunnel datagrams come from `address`.
        allowedRelays: [address],
        relays: [`${address}:${RELAY_PORT}`],
        keysFile: 'keys.yaml',
        backend: { url: `ws://${address}:8765`, sampleRate: 16000 },
        api: { host: address, port: 8090, token: this.apiTokens[name] },
        graceMs: 500,
      }),
      sessions: { max: options.capacity?.[name] ?? 20, mediaTimeoutMs: 15_000 },
      log: { level: 'warn' },
    } satisfies TransceiverConfigInput);
    await this.#service(
      `transceiver ${name}`,
      ns,
      ['transceiver/main.ts', '--config', transceiver],
      `http://${address}:8090/healthz`,
    );
    // What the operator would publish for the cluster: its transceiver, and the edge relay it
    // accepts tunnel traffic from.
    this.#write(`routing-${name}.yaml`, {
      ...routingTable(id, 1, [
        { id: TRANSCEIVER_ID, tunnel: `${address}:7000`, state: 'active', api: `http://${address}:8090` },
      ]),
      edgeRelays: [`${ADDRESS.edge}/32`],
    } satisfies RoutingTableInput);
    const relay = this.#write(`relay-${name}.yaml`, {
      ...relayConfig({
        clusterId: id,
        listen: `${address}:${RELAY_PORT}`,
        routingFile: `routing-${name}.yaml`,
        keysFile: 'keys.yaml',
        http: { host: address, port: 9090 },
      }),
      log: { level: 'warn' },
      flows: { newFlowsPerSourcePerSecond: 1000 },
    } satisfies RelayConfigInput);
    await this.#service(
      `relay ${name}`,
      ns,
      ['relay/main.ts', '--config', relay],
      `http://${address}:9090/readyz`,
    );
  }

  /** Starts (or restarts) the edge relay: mode edge, both clusters as peers, flows in Redis. */
  async startEdgeRelay(): Promise<void> {
    const config = this.#write('relay-edge.yaml', {
      ...relayConfig({
        clusterId: 1,
        listen: `${ADDRESS.edge}:${RELAY_PORT}`,
        tcpListen: [`${ADDRESS.edge}:${RELAY_PORT}`],
        keysFile: 'keys.yaml',
        http: { host: ADDRESS.edge, port: 9090 },
      }),
      mode: 'edge',
      peers: (Object.keys(CLUSTERS) as ClusterName[]).map((name) => ({
        clusterId: CLUSTERS[name].id,
        region: CLUSTERS[name].region,
        relays: [`${CLUSTERS[name].address}:${RELAY_PORT}`],
      })),
      redis: { url: this.redis!.url },
      log: { level: 'warn' },
      flows: { newFlowsPerSourcePerSecond: 1000 },
    } satisfies RelayConfigInput);
    await this.#service(
      'edge relay',
      NS.edge,
      ['relay/main.ts', '--config', config],
      `http://${ADDRESS.edge}:9090/readyz`,
    );
  }

  /** Kills the edge relay at once (no drain): a crash or an eviction. */
  async killEdgeRelay(): Promise<void> {
    await this.services.get('edge relay')?.stop('SIGKILL');
    this.services.delete('edge relay');
  }

  /** A relay's metrics: `edge`, `c1` or `c2`. */
  async relayMetrics(site: 'edge' | ClusterName): Promise<Samples> {
    const address = site === 'edge' ? ADDRESS.edge : CLUSTERS[site].address;
    return parsePrometheus(await (await fetch(`http://${address}:9090/metrics`)).text());
  }

  async signalingMetrics(): Promise<Samples> {
    return parsePrometheus(await (await fetch(`http://${ADDRESS.edge}:9091/metrics`)).text());
  }

  async status(cluster: ClusterName): Promise<{ sessions: number; capacity: number; state: string }> {
    const response = await fetch(`http://${CLUSTERS[cluster].address}:8090/status`, {
      headers: { authorization: `Bearer ${this.apiTokens[cluster]}` },
    });
    return response.json() as Promise<{ sessions: number; capacity: number; state: string }>;
  }

  /**
   * Runs the command-line caller (`npm run call`: cli/call.ts, werift) inside the user namespace;
   * resolves with its JSON line, its exit code and its stderr.
   */
  async callFromUser(options: {
    durationS: number;
    region?: string;
    timeoutS?: number;
  }): Promise<{ figures: CallFigures; code: number | null; stderr: string }> {
    const args = [
      join(root, 'cli/call.ts'),
      '--url',
      this.whipUrl,
      '--duration',
      String(options.durationS),
      '--timeout',
      String(options.timeoutS ?? 15),
      '--json',
      ...(options.region === undefined ? [] : ['--region', options.region]),
    ];
    const child: ChildProcess = this.net.spawn(NS.user, process.execPath, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const last = stdout.trim().split('\n').at(-1) ?? '';
    let figures: CallFigures;
    try {
      figures = JSON.parse(last) as CallFigures;
    } catch {
      throw new Error(`the caller printed no JSON line (exit ${code}):\n${stdout}\n${stderr}`);
    }
    return { figures, code, stderr };
  }

  /** Everything the services printed (for failure messages). */
  get output(): string {
    return [...this.services.values()]
      .map((service) => `--- ${service.name}\n${service.output}`)
      .concat(`--- wan router\n${this.net.routerOutput}`)
      .join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.services.values()].map((service) => service.stop('SIGKILL')));
    await this.redis?.stop();
    await this.net.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
