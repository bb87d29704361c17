// Runs the real relay (`node relay/main.ts --config …`) as a child process in a temp folder.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseKeyringDocument } from '../../protocol/keyring.ts';
import { deriveIcePassword, newUfrag, type RoutingKeyring } from '../../protocol/ufrag.ts';
import { parsePrometheus, type Samples, sample } from './prometheus.ts';

const MAIN = fileURLToPath(new URL('../../relay/main.ts', import.meta.url));

export interface KeyringFixture {
  readonly document: { current?: number; keys: { id: number; secret: string }[] };
  readonly keyring: RoutingKeyring;
}

export function makeKeyring(ids: number[] = [1], current?: number): KeyringFixture {
  const document = {
    ...(current === undefined ? {} : { current }),
    keys: ids.map((id) => ({ id, secret: randomBytes(32).toString('base64') })),
  };
  const parsed = parseKeyringDocument(document);
  if (!parsed.ok) throw new Error(parsed.error);
  return { document, keyring: parsed.keyring };
}

/** A fresh server ufrag and its ICE password, as a transceiver would mint them at `nowMs`. */
export function credentialsFor(
  keyring: RoutingKeyring,
  clusterId: number,
  transceiverId: number,
  nowMs = Date.now(),
) {
  const ufrag = newUfrag(keyring, { clusterId, transceiverId }, nowMs);
  return { ufrag, password: deriveIcePassword(ufrag, keyring.current) };
}

export interface RelayFixtureOptions {
  readonly clusterId?: number;
  readonly keyring?: KeyringFixture;
  readonly routing: unknown;
  /** Extra relay config fields (merged over the defaults below). */
  readonly config?: Record<string, unknown>;
  readonly listen?: string[];
  readonly httpPort: number;
}

/** A temp folder with relay.yaml, routing.yaml and keys.yaml. */
export class RelayFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'voice-edge-relay-'));
  readonly keyring: KeyringFixture;
  readonly httpPort: number;
  readonly configFile: string;

  constructor(options: RelayFixtureOptions) {
    this.keyring = options.keyring ?? makeKeyring();
    this.httpPort = options.httpPort;
    this.configFile = join(this.dir, 'relay.yaml');
    writeFileSync(join(this.dir, 'keys.yaml'), stringify(this.keyring.document));
    this.writeRouting(options.routing);
    const config = {
      clusterId: options.clusterId ?? 1,
      listen: options.listen,
      workers: 1,
      routingTable: { file: 'routing.yaml' },
      routingKeys: { file: 'keys.yaml' },
      http: { host: '127.0.0.1', port: options.httpPort },
      log: { level: 'warn' },
      shutdown: { drainMs: 0 },
      flows: { newFlowsPerSourcePerSecond: 10_000 },
      ...options.config,
    };
    writeFileSync(this.configFile, stringify(config));
  }

  /** Replaces routing.yaml atomically (write + rename), as a ConfigMap update would. */
  writeRouting(routing: unknown): void {
    const temp = join(this.dir, `.routing-${randomBytes(4).toString('hex')}.yaml`);
    writeFileSync(temp, typeof routing === 'string' ? routing : stringify(routing));
    renameSync(temp, join(this.dir, 'routing.yaml'));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class RelayProcess {
  readonly child: ChildProcess;
  readonly fixture: RelayFixture;
  #output = '';
  readonly exited: Promise<number | null>;

  private constructor(fixture: RelayFixture, env: NodeJS.ProcessEnv) {
    this.fixture = fixture;
    this.child = spawn(process.execPath, [MAIN, '--config', fixture.configFile], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString();
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  static async start(fixture: RelayFixture, env: NodeJS.ProcessEnv = {}): Promise<RelayProcess> {
    const relay = new RelayProcess(fixture, env);
    const deadline = Date.now() + 15_000;
    let exitCode: number | null | undefined;
    void relay.exited.then((code) => {
      exitCode = code;
    });
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`relay exited with ${exitCode}:\n${relay.output}`);
      try {
        const response = await fetch(`http://127.0.0.1:${fixture.httpPort}/readyz`);
        if (response.ok) return relay;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    relay.child.kill('SIGKILL');
    throw new Error(`relay not ready within 15 s:\n${relay.output}`);
  }

  get output(): string {
    return this.#output;
  }

  async metrics(): Promise<Samples> {
    const response = await fetch(`http://127.0.0.1:${this.fixture.httpPort}/metrics`);
    return parsePrometheus(await response.text());
  }

  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sample(await this.metrics(), name, labels);
  }

  async drops(reason: string): Promise<number> {
    return this.value('voice_edge_relay_drops_total', { reason });
  }

  /** Polls a metric until `predicate` holds (metrics lag packets by a few microseconds). */
  async waitFor(
    name: string,
    labels: Record<string, string>,
    predicate: (v: number) => boolean,
    timeoutMs = 3_000,
  ) {
    const deadline = Date.now() + timeoutMs;
    let last = await this.value(name, labels);
    while (!predicate(last)) {
      if (Date.now() > deadline) throw new Error(`${name}${JSON.stringify(labels)} stayed at ${last}`);
      await sleep(20);
      last = await this.value(name, labels);
    }
    return last;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
