import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_OFFER_SHAPE_LIMITS } from '../protocol/sdp-check.ts';
import { ConfigError as RelayConfigError } from '../relay/config.ts';
import { ConfigError, DEFAULT_PER_CLIENT_LIMITS, HTTP_DEFAULTS, loadSignalingConfig } from './config.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'voice-edge-signaling-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function configFile(text: string): string {
  const path = join(dir, `signaling-${counter++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function assertConfigError(action: () => unknown, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  for (const pattern of patterns) assert.match(caught.message, pattern);
}

const ROUTING = 'routingTable: { file: routing.yaml }\n';
/** The smallest valid file: a routing table and the transceivers' API token. */
const MINIMAL = `${ROUTING}transceivers: { apiTokens: [api-token] }\n`;

describe('loadSignalingConfig', () => {
  test('a minimal file gets every default; the routing file is resolved against the config folder', () => {
    const config = loadSignalingConfig(configFile(MINIMAL), {});
    assert.deepEqual(config, {
      http: { host: '127.0.0.1', port: 8080, trustProxy: false, ...HTTP_DEFAULTS },
      ops: { host: '127.0.0.1', port: 9091 },
      routingTable: { file: join(dir, 'routing.yaml') },
      relays: [],
      tcpRelays: [],
      edgeRelays: [],
      region: { header: 'x-voice-edge-region', nearest: {} },
      auth: { tokens: [] },
      cors: { allowOrigins: ['*'] },
      transceivers: {
        statusIntervalMs: 1000,
        statusTimeoutMs: 500,
        statusStaleMs: 3000,
        requestTimeoutMs: 5000,
        apiTokens: ['api-token'],
      },
      placement: { maxAttempts: 3, retryAfterSeconds: 5 },
      limits: {
        maxOfferBytes: 65536,
        offer: DEFAULT_OFFER_SHAPE_LIMITS,
        perClient: DEFAULT_PER_CLIENT_LIMITS,
      },
      demo: { enabled: true },
      log: { level: 'info' },
      shutdown: { drainMs: 5000 },
    });
  });

  test('a full file', () => {
    const config = loadSignalingConfig(
      configFile(`
http: { host: "0.0.0.0", port: 8443 }
ops: { host: "::", port: 0 }
routingTable: { file: /etc/voice-edge/routing.yaml }
relays: ["203.0.113.7:3478", "[2001:db8::7]:3478"]
auth: { tokens: [abc, "def=="] }
cors: { allowOrigins: ["https://app.example.com", "http://localhost:5173"] }
transceivers: { statusIntervalMs: 2000, statusTimeoutMs: 300, statusStaleMs: 7000, requestTimeoutMs: 800, apiTokens: [new-token, old-token] }
placement: { maxAttempts: 1, retryAfterSeconds: 30 }
limits: { maxOfferBytes: 16384 }
demo: { enabled: false }
log: { level: debug }
shutdown: { drainMs: 0 }
`),
      {},
    );
    assert.equal(config.routingTable?.file, '/etc/voice-edge/routing.yaml');
    assert.deepEqual(config.relays, [
      { family: 4, address: '203.0.113.7', port: 3478 },
      { family: 6, address: '2001:db8::7', port: 3478 },
    ]);
    assert.deepEqual(config.auth.tokens, ['abc', 'def==']);
    assert.deepEqual(config.transceivers.apiTokens, ['new-token', 'old-token']);
    assert.deepEqual(config.cors.allowOrigins, ['https://app.example.com', 'http://localhost:5173']);
    assert.equal(config.placement.maxAttempts, 1);
    assert.equal(config.ops.host, '::');
    assert.equal(config.demo.enabled, false);
  });

  test('VOICE_EDGE_SIGNALING_* overrides, lists as YAML or comma-separated', () => {
    const config = loadSignalingConfig(configFile(`${MINIMAL}auth: { tokens: [from-file] }\n`), {
      VOICE_EDGE_SIGNALING_AUTH__TOKENS: 'one, two ,three',
      VOICE_EDGE_SIGNALING_RELAYS: '["198.51.100.1:3478"]',
      VOICE_EDGE_SIGNALING_HTTP__PORT: '9000',
      VOICE_EDGE_SIGNALING_CORS__ALLOW_ORIGINS: 'https://a.example, https://b.example',
      VOICE_EDGE_SIGNALING_TRANSCEIVERS__REQUEST_TIMEOUT_MS: '1500',
      VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS: 'next-token, api-token',
      VOICE_EDGE_SIGNALING_DEMO__ENABLED: 'false',
      VOICE_EDGE_RELAY_HTTP__PORT: '1',
    });
    assert.deepEqual(config.auth.tokens, ['one', 'two', 'three']);
    assert.deepEqual(config.relays, [{ family: 4, address: '198.51.100.1', port: 3478 }]);
    assert.equal(config.http.port, 9000);
    assert.deepEqual(config.cors.allowOrigins, ['https://a.example', 'https://b.example']);
    assert.equal(config.transceivers.requestTimeoutMs, 1500);
    assert.deepEqual(config.transceivers.apiTokens, ['next-token', 'api-token']);
    assert.equal(config.demo.enabled, false);
    // An empty variable turns authentication off.
    assert.deepEqual(
      loadSignalingConfig(configFile(`${MINIMAL}auth: { tokens: [x] }\n`), {
        VOICE_EDGE_SIGNALING_AUTH__TOKENS: '',
      }).auth.tokens,
      [],
    );
  });

  test('errors name the field and never echo a token', () => {
    assertConfigError(() => loadSignalingConfig(configFile('http: { port: 1 }\n'), {}), /routingTable/);
    assertConfigError(
      () => loadSignalingConfig(configFile(ROUTING), {}),
      /transceivers\.apiTokens: required: the bearer token of the transceivers' API/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(`${ROUTING}transceivers: { apiTokens: ["api token"] }\n`), {}),
      /transceivers\.apiTokens\.0: a bearer token is token68/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(`${MINIMAL}relays: ["example.com:3478"]\n`), {}),
      /relays\.0/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(`${MINIMAL}relays: ["10.0.0.1:0"]\n`), {}),
      /relays\.0/,
    );
    let caught: unknown;
    try {
      loadSignalingConfig(configFile(`${MINIMAL}auth: { tokens: ["secret with spaces"] }\n`), {});
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigError);
    assert.match(caught.message, /auth\.tokens\.0: a bearer token is token68/);
    assert.doesNotMatch(caught.message, /secret/);
    assertConfigError(
      () =>
        loadSignalingConfig(configFile(`${MINIMAL}cors: { allowOrigins: ["https://a.example/path"] }\n`), {}),
      /cors\.allowOrigins\.0/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(configFile(`${MINIMAL}cors: { allowOrigins: ["*", "https://a.example"] }\n`), {}),
      /cors\.allowOrigins: "\*" allows every origin/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(
          configFile(`${MINIMAL}http: { headersTimeoutMs: 20000, requestTimeoutMs: 10000 }\n`),
          {},
        ),
      /http\.headersTimeoutMs: must not be longer than requestTimeoutMs/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(`${MINIMAL}limits: { offer: { maxMediaSections: 0 } }\n`), {}),
      /limits\.offer\.maxMediaSections/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(
          configFile(
            `${ROUTING}transceivers: { statusIntervalMs: 500, statusTimeoutMs: 500, apiTokens: t }\n`,
          ),
          {},
        ),
      /transceivers\.statusTimeoutMs: must be shorter than statusIntervalMs/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(
          configFile(`${ROUTING}transceivers: { statusStaleMs: 1000, apiTokens: t }\n`),
          {},
        ),
      /transceivers\.statusStaleMs: must be longer/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(`${MINIMAL}unknownField: 1\n`), {}),
      /unknownField/,
    );
    assertConfigError(
      () => loadSignalingConfig(configFile(MINIMAL), { VOICE_EDGE_SIGNALING_PLACEMENT__MAX_ATTEMPTS: '0' }),
      /placement\.maxAttempts/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(configFile(`${MINIMAL}relays: [a]\n`), { VOICE_EDGE_SIGNALING_RELAYS__0: 'x' }),
      /VOICE_EDGE_SIGNALING_RELAYS__0/,
    );
  });

  test('file problems', () => {
    assertConfigError(() => loadSignalingConfig(join(dir, 'missing.yaml'), {}), /cannot read config file/);
    assertConfigError(() => loadSignalingConfig(configFile('a: [\n'), {}), /not valid YAML/);
    assertConfigError(() => loadSignalingConfig(configFile('- a\n'), {}), /must hold a YAML mapping/);
  });

  test('with no file the environment alone configures; the routing table may be a ConfigMap', () => {
    const config = loadSignalingConfig(undefined, {
      VOICE_EDGE_SIGNALING_ROUTING_TABLE__CONFIG_MAP__NAME: 'vec-routing',
      VOICE_EDGE_SIGNALING_RELAYS: '["203.0.113.5:3478"]',
      VOICE_EDGE_SIGNALING_OPS__HOST: '0.0.0.0',
      VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS: 'from-a-secret',
      POD_NAMESPACE: 'edge',
    });
    assert.deepEqual(config.routingTable, { configMap: { name: 'vec-routing', namespace: 'edge' } });
    assert.deepEqual(config.ops, { host: '0.0.0.0', port: 9091 });
    assert.deepEqual(config.relays, [{ family: 4, address: '203.0.113.5', port: 3478 }]);
    assert.deepEqual(
      loadSignalingConfig(undefined, {
        VOICE_EDGE_SIGNALING_ROUTING_TABLE__FILE: 'r.yaml',
        VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS: 't',
      }).routingTable,
      {
        file: join(process.cwd(), 'r.yaml'),
      },
    );
    assertConfigError(
      () => loadSignalingConfig(undefined, { VOICE_EDGE_SIGNALING_ROUTING_TABLE__CONFIG_MAP__NAME: 'r' }),
      /^invalid signaling config \(no --config file: VOICE_EDGE_SIGNALING_\* variables only\): /,
      /routingTable\.configMap\.namespace: required \(or set POD_NAMESPACE.*\(VOICE_EDGE_SIGNALING_ROUTING_TABLE__CONFIG_MAP__NAMESPACE\)/,
    );
    assertConfigError(
      () =>
        loadSignalingConfig(
          configFile('routingTable: { file: a, configMap: { name: b, namespace: c } }\n'),
          {},
        ),
      /routingTable: set exactly one of routingTable\.file and routingTable\.configMap/,
    );
  });

  test('the relay and signaling share one ConfigError class', () => {
    assert.equal(ConfigError, RelayConfigError);
  });
});

describe('npm run signaling', () => {
  const main = join(import.meta.dirname, 'main.ts');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 20_000 });

  test('a bad config exits 2 with one line naming the field', () => {
    const result = run('--config', configFile(`${MINIMAL}placement: { maxAttempts: 99 }\n`));
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^voice-edge signaling: invalid signaling config .*placement\.maxAttempts/);
  });

  test('no --config and no variables: exits 2 naming routingTable and its variables', () => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        ([name]) => !name.startsWith('VOICE_EDGE_') && name !== 'POD_NAMESPACE',
      ),
    );
    const result = spawnSync(process.execPath, [main], { encoding: 'utf8', timeout: 20_000, env });
    assert.equal(result.status, 2);
    assert.equal(
      result.stderr,
      'voice-edge signaling: invalid signaling config (no --config file: VOICE_EDGE_SIGNALING_* variables only): ' +
        'routingTable: required: { file: <path> } or { configMap: { name, namespace } } (VOICE_EDGE_SIGNALING_ROUTING_TABLE__…); ' +
        "transceivers.apiTokens: required: the bearer token of the transceivers' API (one of their api.tokens) (VOICE_EDGE_SIGNALING_TRANSCEIVERS__API_TOKENS)\n",
    );
  });

  test('--help prints the usage with --config optional', () => {
    const result = run('--help');
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'usage: npm run signaling -- [--config <file.yaml>]\n');
  });

  test('a routing table that cannot be read exits 1', () => {
    const result = run(
      '--config',
      configFile(
        `routingTable: { file: nowhere.yaml }\nops: { port: 0 }\nhttp: { port: 0 }\ntransceivers: { apiTokens: t }\n`,
      ),
    );
    assert.equal(result.status, 1);
    assert.match(result.stderr, /voice-edge signaling: .*nowhere\.yaml/);
  });
});
