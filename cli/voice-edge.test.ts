// The image's entry point, as a real process: which component runs, exit codes and messages.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freeTcpPort, freeUdpPort } from '../test/support/net.ts';
import { makeKeyring } from '../test/support/relay-process.ts';
import { waitUntil } from '../test/support/wait.ts';
import { COMPONENTS } from './components.ts';

const CLI = fileURLToPath(new URL('./voice-edge.ts', import.meta.url));
const DISPATCH = fileURLToPath(new URL('./dispatch.ts', import.meta.url));

/** The test runner's environment without anything that configures a component. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('VOICE_EDGE_') && name !== 'POD_NAMESPACE' && name !== 'KUBECONFIG',
    ),
  );
  return { ...env, ...extra };
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: cleanEnv(env),
  });
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'voice-edge-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('voice-edge <component>', () => {
  test('no component: usage listing every component on stderr, exit 2', () => {
    const result = cli([]);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(
      result.stderr,
      /^voice-edge: no component given\nusage: voice-edge <component> \[--config <file\.yaml>\]/,
    );
    for (const name of ['relay', 'signaling', 'transceiver', 'operator', 'echo-agent']) {
      assert.match(result.stderr, new RegExp(`\\n  ${name} +\\S`), name);
    }
  });

  test('an unknown component: named, usage on stderr, exit 2', () => {
    const result = cli(['relays', '--config', 'x.yaml']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^voice-edge: unknown component "relays"\nusage: voice-edge <component>/);
  });

  test('--help: usage on stdout, exit 0', () => {
    const result = cli(['--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^usage: voice-edge <component>/);
    assert.equal(result.stderr, '');
  });

  test("each service's --help is its own usage, with --config optional", () => {
    for (const name of ['relay', 'signaling', 'transceiver']) {
      const result = cli([name, '--help']);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, `usage: voice-edge ${name} [--config <file.yaml>]\n`);
    }
    const echo = cli(['echo-agent', '--help']);
    assert.equal(echo.status, 0, echo.stderr);
    assert.match(echo.stdout, /^usage: voice-edge echo-agent \[--port 8081\]/);
  });

  test('no --config and no variables: one line naming the fields and their variables, exit 2', () => {
    const expected: Record<string, RegExp> = {
      relay:
        /^voice-edge relay: invalid relay config \(no --config file: VOICE_EDGE_RELAY_\* variables only\): clusterId: [^;]*\(VOICE_EDGE_RELAY_CLUSTER_ID\); listen: [^;]*\(VOICE_EDGE_RELAY_LISTEN\); routingTable: [^;]*\(VOICE_EDGE_RELAY_ROUTING_TABLE__…\)\n$/,
      signaling:
        /^voice-edge signaling: invalid signaling config \(no --config file: VOICE_EDGE_SIGNALING_\* variables only\): routingTable: [^;]*\(VOICE_EDGE_SIGNALING_ROUTING_TABLE__…\); transceivers\.apiTokens: [^;]*\(VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS\)\n$/,
      transceiver:
        /^voice-edge transceiver: invalid transceiver config \(no --config file: VOICE_EDGE_TRANSCEIVER_\* variables only\): clusterId: [^;]*\(VOICE_EDGE_TRANSCEIVER_CLUSTER_ID\); transceiverId: .*\(VOICE_EDGE_TRANSCEIVER_BACKEND__…\); api\.tokens: required: [^;]*\(VOICE_EDGE_TRANSCEIVER_API__TOKENS\)\n$/,
    };
    for (const [name, pattern] of Object.entries(expected)) {
      const result = cli([name]);
      assert.equal(result.status, 2, `${name}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
    }
  });

  test('a bad option of a component: its usage, exit 2', () => {
    const result = cli(['relay', '--confg', 'x.yaml']);
    assert.equal(result.status, 2);
    assert.match(
      result.stderr,
      /^voice-edge relay: .*--confg.*\nusage: voice-edge relay \[--config <file\.yaml>\]\n$/s,
    );
  });

  test('--config still works through the dispatcher (a missing file is a config error)', () => {
    const result = cli(['signaling', '--config', join(dir, 'absent.yaml')]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^voice-edge signaling: cannot read config file .*absent\.yaml/);
  });

  test('the npm scripts still run the same mains, with npm in their usage', () => {
    const result = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../relay/main.ts', import.meta.url)), '--help'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'usage: npm run relay -- [--config <file.yaml>]\n');
  });

  test('a component whose main module is missing from the build fails alone, exit 1', () => {
    const script = `
      import { dispatch } from ${JSON.stringify(DISPATCH)};
      await dispatch(
        { ghost: { main: './no-such-component/main.ts', npmScript: 'ghost', summary: 'absent' } },
        ${JSON.stringify(new URL('.', import.meta.url).href)},
        ['node', 'voice-edge.ts', ...process.argv.slice(1)],
      );`;
    const run = (component: string) =>
      spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', component], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    const missing = run('ghost');
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(
      missing.stderr,
      /^voice-edge: component "ghost" is not in this build \(.*cli\/no-such-component\/main\.ts is missing\)\n$/,
    );
    assert.equal(run('nothing').status, 2);
  });

  test('the component table names a main module for each component of the k8s contract', () => {
    assert.deepEqual(Object.keys(COMPONENTS).sort(), [
      'echo-agent',
      'operator',
      'relay',
      'signaling',
      'transceiver',
    ]);
  });
});

describe('voice-edge runs a component configured by its environment alone', () => {
  async function stop(child: ChildProcess): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    return code as number | null;
  }

  test('relay: env only (listen, cluster, routing file, keys), ready, then SIGTERM exits 0', async () => {
    const keyring = makeKeyring();
    const routingFile = join(dir, 'routing.yaml');
    writeFileSync(routingFile, stringify({ clusterId: 4, generation: 3, transceivers: [] }));
    const httpPort = await freeTcpPort();
    const child = spawn(process.execPath, [CLI, 'relay'], {
      env: cleanEnv({
        VOICE_EDGE_RELAY_CLUSTER_ID: '4',
        VOICE_EDGE_RELAY_LISTEN: `["127.0.0.1:${await freeUdpPort()}"]`,
        VOICE_EDGE_RELAY_WORKERS: '1',
        VOICE_EDGE_RELAY_ROUTING_TABLE__FILE: routingFile,
        VOICE_EDGE_RELAY_HTTP__PORT: String(httpPort),
        VOICE_EDGE_RELAY_SHUTDOWN__DRAIN_MS: '0',
        VOICE_EDGE_ROUTING_KEYS: stringify(keyring.document),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    try {
      await waitUntil(
        async () => {
          if (child.exitCode !== null) throw new Error(`relay exited ${child.exitCode}: ${output}`);
          const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
            (response) => response.ok,
            () => false,
          );
          return ready;
        },
        20_000,
        'relay ready',
      );
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assert.match(metrics, /^voice_edge_relay_routing_table_generation 3$/m);
      assert.match(output, /"msg":"relay ready"/);
    } finally {
      assert.equal(await stop(child), 0, output);
    }
  });

  test('echo-agent: options only, listening, then SIGTERM exits 0', async () => {
    const port = await freeTcpPort();
    const child = spawn(
      process.execPath,
      [CLI, 'echo-agent', '--port', String(port), '--log-level', 'info'],
      {
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
    try {
      await waitUntil(async () => output.includes('echo agent listening'), 20_000, 'echo agent listening');
      assert.match(output, new RegExp(`"port":${port}`));
    } finally {
      assert.equal(await stop(child), 0, output);
    }
  });
});
