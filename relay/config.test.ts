import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyEnvOverrides, ConfigError, loadRelayConfig } from './config.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'voice-edge-config-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;
/** Writes `text` to a fresh config file (in `sub` under the temp folder if given) and returns its path. */
function configFile(text: string, sub?: string): string {
  const folder = sub === undefined ? dir : join(dir, sub);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `relay-${fileCounter++}.yaml`);
  writeFileSync(path, text);
  return path;
}

const MINIMAL = `
clusterId: 7
listen: ["0.0.0.0:3478"]
routingTable: { file: routing.yaml }
routingKeys: { file: keys.yaml }
`;

/** loadRelayConfig must throw a ConfigError whose message matches every pattern. */
function assertConfigError(action: () => unknown, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  for (const pattern of patterns) assert.match(caught.message, pattern);
  return caught;
}

describe('loadRelayConfig', () => {
  test('a minimal file gets every default', () => {
    const file = configFile(MINIMAL);
    const config = loadRelayConfig(file, {});
    assert.equal(config.clusterId, 7);
    assert.deepEqual(config.listen, [{ family: 4, address: '0.0.0.0', port: 3478 }]);
    assert.equal(config.workers, 'auto');
    assert.equal(config.workerCount, availableParallelism());
    assert.deepEqual(config.tunnel, { bindV4: '0.0.0.0' });
    assert.deepEqual(config.flows, {
      idleTimeoutMs: 30_000,
      maxFlows: 200_000,
      newFlowsPerSourcePerSecond: 20,
    });
    assert.equal(config.redis, undefined);
    assert.deepEqual(config.http, { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(config.log, { level: 'info' });
    assert.deepEqual(config.shutdown, { drainMs: 5_000 });
    assert.equal(config.socketBufferBytes, 4 * 1024 * 1024);
    assert.equal(config.routingTable?.file, join(dir, 'routing.yaml'));
    assert.equal(config.routingKeys?.file, join(dir, 'keys.yaml'));
  });

  test('a full file: IPv6 listen, fixed workers, redis defaults filled in', () => {
    const file = configFile(`
clusterId: 65535
listen: ["0.0.0.0:3478", "[::]:3479"]
workers: 3
tunnel: { bindV4: 10.0.0.5, bindV6: "fd00::5" }
routingTable: { file: /etc/voice-edge/routing.yaml }
routingKeys: { file: /etc/voice-edge/keys.yaml }
flows: { maxFlows: 10 }
redis: { url: "rediss://redis:6380" }
http: { host: "::", port: 0 }
log: { level: debug }
shutdown: { drainMs: 0 }
`);
    const config = loadRelayConfig(file, {});
    assert.deepEqual(config.listen[1], { family: 6, address: '::', port: 3479 });
    assert.equal(config.workerCount, 3);
    assert.deepEqual(config.tunnel, { bindV4: '10.0.0.5', bindV6: 'fd00::5' });
    assert.deepEqual(config.flows, { idleTimeoutMs: 30_000, maxFlows: 10, newFlowsPerSourcePerSecond: 20 });
    assert.deepEqual(config.redis, {
      url: 'rediss://redis:6380',
      keyPrefix: 'voice-edge:',
      ttlSeconds: 120,
      lookupTimeoutMs: 50,
      maxConcurrentLookups: 256,
      lookupsPerSourcePerSecond: 5,
      negativeCacheMs: 5_000,
    });
    assert.deepEqual(config.http, { host: '::', port: 0 });
    // Absolute paths stay as they are.
    assert.equal(config.routingTable?.file, '/etc/voice-edge/routing.yaml');
    assert.equal(config.routingKeys?.file, '/etc/voice-edge/keys.yaml');
  });

  test("relative paths are resolved against the config file's folder, not the working directory", () => {
    const file = configFile(
      `
clusterId: 1
listen: ["127.0.0.1:3478"]
routingTable: { file: ../tables/routing.yaml }
routingKeys: { file: secrets/keys.yaml }
`,
      'etc/relay',
    );
    // The config file itself given relative to the working directory.
    const config = loadRelayConfig(relative(process.cwd(), file), {});
    assert.equal(config.routingTable?.file, join(dir, 'etc', 'tables', 'routing.yaml'));
    assert.equal(config.routingKeys?.file, join(dir, 'etc', 'relay', 'secrets', 'keys.yaml'));
  });

  test('environment overrides: nested scalars, a new section, a YAML list', () => {
    const file = configFile(MINIMAL);
    const config = loadRelayConfig(file, {
      VOICE_EDGE_RELAY_REDIS__URL: 'redis://r:6379',
      VOICE_EDGE_RELAY_FLOWS__MAX_FLOWS: '5000',
      VOICE_EDGE_RELAY_LISTEN: '["0.0.0.0:4000", "[::1]:4001"]',
      VOICE_EDGE_RELAY_SOCKET_BUFFER_BYTES: '131072',
      VOICE_EDGE_RELAY_LOG__LEVEL: 'warn',
      VOICE_EDGE_RELAY_WORKERS: '2',
      OTHER_VARIABLE: 'ignored',
    });
    assert.equal(config.redis?.url, 'redis://r:6379');
    assert.equal(config.redis?.ttlSeconds, 120);
    assert.equal(config.flows.maxFlows, 5000);
    assert.equal(config.flows.idleTimeoutMs, 30_000, 'siblings keep their defaults');
    assert.deepEqual(config.listen, [
      { family: 4, address: '0.0.0.0', port: 4000 },
      { family: 6, address: '::1', port: 4001 },
    ]);
    assert.equal(config.socketBufferBytes, 131_072);
    assert.equal(config.log.level, 'warn');
    assert.equal(config.workerCount, 2);
  });

  test('VOICE_EDGE_ROUTING_KEYS stands in for routingKeys.file', () => {
    const file = configFile(`
clusterId: 7
listen: ["0.0.0.0:3478"]
routingTable: { file: routing.yaml }
`);
    const config = loadRelayConfig(file, { VOICE_EDGE_ROUTING_KEYS: 'keys: []' });
    assert.equal(config.routingKeys, undefined);
  });

  describe('errors are ConfigErrors that name the field', () => {
    test('missing routingKeys and no VOICE_EDGE_ROUTING_KEYS', () => {
      const file = configFile(`
clusterId: 7
listen: ["0.0.0.0:3478"]
routingTable: { file: routing.yaml }
`);
      assertConfigError(() => loadRelayConfig(file, {}), /routingKeys\.file/, /VOICE_EDGE_ROUTING_KEYS/);
      assertConfigError(() => loadRelayConfig(file, { VOICE_EDGE_ROUTING_KEYS: '' }), /routingKeys\.file/);
    });

    test('a listen port of 0 (every worker must bind the same port)', () => {
      const file = configFile(
        'clusterId: 7\nlisten: ["0.0.0.0:0"]\nroutingTable: { file: r.yaml }\nroutingKeys: { file: k.yaml }\n',
      );
      assertConfigError(() => loadRelayConfig(file, {}), /listen\.0/, /port 0/);
    });

    test('unknown fields, top-level and nested', () => {
      assertConfigError(() => loadRelayConfig(configFile(`${MINIMAL}bogus: 1\n`), {}), /bogus/);
      assertConfigError(
        () => loadRelayConfig(configFile(`${MINIMAL}flows: { maxFlow: 3 }\n`), {}),
        /flows/,
        /maxFlow/,
      );
      assertConfigError(
        () => loadRelayConfig(configFile(MINIMAL), { VOICE_EDGE_RELAY_REDIS__URLS: 'redis://r' }),
        /redis/,
        /urls/,
      );
    });

    test('bad addresses', () => {
      for (const listen of ['"1.2.3:3478"', '"0.0.0.0"', '"::1:3478"', '"0.0.0.0:70000"', '"host:3478"']) {
        const file = configFile(`
clusterId: 7
listen: ["0.0.0.0:3478", ${listen}]
routingTable: { file: routing.yaml }
routingKeys: { file: keys.yaml }
`);
        assertConfigError(() => loadRelayConfig(file, {}), /listen\.1/);
      }
      assertConfigError(
        () => loadRelayConfig(configFile(MINIMAL), { VOICE_EDGE_RELAY_LISTEN: '[]' }),
        /listen/,
      );
      assertConfigError(
        () => loadRelayConfig(configFile(`${MINIMAL}tunnel: { bindV4: "::1" }\n`), {}),
        /tunnel\.bindV4/,
      );
      assertConfigError(
        () => loadRelayConfig(configFile(`${MINIMAL}http: { host: localhost }\n`), {}),
        /http\.host/,
      );
    });

    test('bad values', () => {
      const cases: [string, RegExp][] = [
        ['clusterId: 65536', /clusterId/],
        ['workers: 0', /workers/],
        ['flows: { idleTimeoutMs: 10 }', /flows\.idleTimeoutMs/],
        ['redis: { url: "http://r:6379" }', /redis\.url.*redis:\/\//],
        ['redis: { url: "redis://r", lookupTimeoutMs: 10000 }', /redis\.lookupTimeoutMs/],
        ['log: { level: loud }', /log\.level/],
        ['socketBufferBytes: 1024', /socketBufferBytes/],
      ];
      for (const [line, pattern] of cases) {
        const text = MINIMAL.replace(
          'clusterId: 7',
          line.startsWith('clusterId') ? line : `clusterId: 7\n${line}`,
        );
        assertConfigError(() => loadRelayConfig(configFile(text), {}), pattern);
      }
      assertConfigError(
        () => loadRelayConfig(configFile(MINIMAL), { VOICE_EDGE_RELAY_FLOWS__MAX_FLOWS: 'many' }),
        /flows\.maxFlows/,
      );
    });

    test('missing required fields', () => {
      assertConfigError(() => loadRelayConfig(configFile('clusterId: 7\n'), {}), /listen/, /routingTable/);
    });

    test('missing file', () => {
      const missing = join(dir, 'does-not-exist.yaml');
      assertConfigError(
        () => loadRelayConfig(missing, {}),
        /cannot read config file/,
        /does-not-exist\.yaml/,
      );
    });

    test('invalid YAML, and YAML that is not a mapping', () => {
      const file = configFile('clusterId: [7\nlisten: {');
      assertConfigError(
        () => loadRelayConfig(file, {}),
        /not valid YAML/,
        new RegExp(file.replace(/\W/g, '.')),
      );
      for (const text of ['- a\n- b\n', '42\n', '', 'null\n']) {
        assertConfigError(() => loadRelayConfig(configFile(text), {}), /must hold a YAML mapping/);
      }
    });

    test('an environment override that is not valid YAML names the variable', () => {
      assertConfigError(
        () => loadRelayConfig(configFile(MINIMAL), { VOICE_EDGE_RELAY_LISTEN: '["0.0.0.0:3478"' }),
        /VOICE_EDGE_RELAY_LISTEN/,
      );
    });

    test('an environment override inside a non-object field', () => {
      assertConfigError(
        () => loadRelayConfig(configFile(MINIMAL), { VOICE_EDGE_RELAY_CLUSTER_ID__X: '1' }),
        /VOICE_EDGE_RELAY_CLUSTER_ID__X/,
        /clusterId\.x/,
      );
    });
  });
});

describe('applyEnvOverrides', () => {
  test('maps SCREAMING_SNAKE paths to camelCase keys and reads values as YAML', () => {
    const raw = { flows: { maxFlows: 1 }, clusterId: 3 };
    const out = applyEnvOverrides(raw, {
      VOICE_EDGE_RELAY_FLOWS__NEW_FLOWS_PER_SOURCE_PER_SECOND: '7',
      VOICE_EDGE_RELAY_TUNNEL__BIND_V4: '10.1.2.3',
      VOICE_EDGE_RELAY_REDIS__KEY_PREFIX: '"123"',
      VOICE_EDGE_RELAY_HTTP: '{ host: "::1", port: 1 }',
      VOICE_EDGE_ROUTING_KEYS: 'not an override',
    });
    assert.deepEqual(out, {
      clusterId: 3,
      flows: { maxFlows: 1, newFlowsPerSourcePerSecond: 7 },
      tunnel: { bindV4: '10.1.2.3' },
      redis: { keyPrefix: '123' },
      http: { host: '::1', port: 1 },
    });
    assert.deepEqual(raw, { flows: { maxFlows: 1 }, clusterId: 3 }, 'the input is not modified');
  });

  test('no matching variables: an equal copy', () => {
    const raw = { listen: ['0.0.0.0:1'] };
    const out = applyEnvOverrides(raw, { PATH: '/bin', VOICE_EDGE_RELAY: 'x' });
    assert.deepEqual(out, raw);
    assert.notEqual(out, raw);
  });

  test('a null section is replaced by an object', () => {
    assert.deepEqual(applyEnvOverrides({ redis: null }, { VOICE_EDGE_RELAY_REDIS__URL: 'redis://x' }), {
      redis: { url: 'redis://x' },
    });
  });

  test('a list cannot be descended into', () => {
    assert.throws(
      () => applyEnvOverrides({ listen: ['a'] }, { VOICE_EDGE_RELAY_LISTEN__0: 'b' }),
      (error: unknown) => error instanceof ConfigError && /VOICE_EDGE_RELAY_LISTEN__0/.test(error.message),
    );
  });
});

describe('routingTable: a file or a Kubernetes ConfigMap', () => {
  const base = 'clusterId: 7\nlisten: ["0.0.0.0:3478"]\nroutingKeys: { file: keys.yaml }\n';

  test('a ConfigMap with its namespace', () => {
    const config = loadRelayConfig(
      configFile(`${base}routingTable: { configMap: { name: edge-routing, namespace: voice } }\n`),
      {},
    );
    assert.deepEqual(config.routingTable, { configMap: { name: 'edge-routing', namespace: 'voice' } });
  });

  test('the namespace defaults to POD_NAMESPACE; a namespace given wins', () => {
    const withoutNamespace = configFile(`${base}routingTable: { configMap: { name: edge-routing } }\n`);
    assert.deepEqual(loadRelayConfig(withoutNamespace, { POD_NAMESPACE: 'pods-here' }).routingTable, {
      configMap: { name: 'edge-routing', namespace: 'pods-here' },
    });
    const withNamespace = configFile(`${base}routingTable: { configMap: { name: r, namespace: given } }\n`);
    assert.deepEqual(loadRelayConfig(withNamespace, { POD_NAMESPACE: 'pods-here' }).routingTable, {
      configMap: { name: 'r', namespace: 'given' },
    });
    assertConfigError(
      () => loadRelayConfig(withoutNamespace, {}),
      /routingTable\.configMap\.namespace: required \(or set POD_NAMESPACE/,
    );
  });

  test('the env form, as the operator sets it on a relay Deployment', () => {
    const config = loadRelayConfig(configFile(base), {
      VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME: 'vec-a-routing',
      VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAMESPACE: 'edge',
    });
    assert.deepEqual(config.routingTable, { configMap: { name: 'vec-a-routing', namespace: 'edge' } });
  });

  test('exactly one of file and configMap', () => {
    assertConfigError(
      () =>
        loadRelayConfig(
          configFile(`${base}routingTable: { file: r.yaml, configMap: { name: r, namespace: n } }\n`),
          {},
        ),
      /routingTable: set exactly one of routingTable\.file and routingTable\.configMap/,
    );
    assertConfigError(
      () => loadRelayConfig(configFile(`${base}routingTable: {}\n`), {}),
      /routingTable: set exactly one/,
    );
    assertConfigError(
      () => loadRelayConfig(configFile(base), {}),
      /routingTable: required: \{ file: <path> \}/,
    );
    // A file from the config plus a ConfigMap from the environment is two sources too.
    assertConfigError(
      () =>
        loadRelayConfig(configFile(MINIMAL), {
          VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME: 'r',
          POD_NAMESPACE: 'n',
        }),
      /set exactly one/,
    );
  });

  test('names that Kubernetes would refuse', () => {
    for (const [configMap, pattern] of [
      [
        '{ name: Edge_Routing, namespace: n }',
        /routingTable\.configMap\.name: must be a Kubernetes object name/,
      ],
      ['{ name: "-r", namespace: n }', /routingTable\.configMap\.name/],
      [
        '{ name: r, namespace: "a.b" }',
        /routingTable\.configMap\.namespace: must be a Kubernetes namespace name/,
      ],
      ['{ name: r, namespace: n, key: x }', /routingTable\.configMap.*key/],
      ['{ namespace: n }', /routingTable\.configMap\.name/],
    ] as const) {
      assertConfigError(
        () => loadRelayConfig(configFile(`${base}routingTable: { configMap: ${configMap} }\n`), {}),
        pattern,
      );
    }
  });
});

describe('loadRelayConfig with no file: the environment alone', () => {
  const env = {
    VOICE_EDGE_RELAY_CLUSTER_ID: '9',
    VOICE_EDGE_RELAY_LISTEN: '["0.0.0.0:3478"]',
    VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME: 'vec-routing',
    VOICE_EDGE_RELAY_HTTP__HOST: '0.0.0.0',
    VOICE_EDGE_ROUTING_KEYS: 'keys: [{ id: 1, secret: AAAAAAAAAAAAAAAAAAAAAA== }]',
    POD_NAMESPACE: 'edge',
  };

  test('a pod configured by its environment gets the same defaults as a file', () => {
    const config = loadRelayConfig(undefined, env);
    assert.equal(config.clusterId, 9);
    assert.deepEqual(config.listen, [{ family: 4, address: '0.0.0.0', port: 3478 }]);
    assert.deepEqual(config.routingTable, { configMap: { name: 'vec-routing', namespace: 'edge' } });
    assert.deepEqual(config.http, { host: '0.0.0.0', port: 9090 });
    assert.equal(config.routingKeys, undefined);
    assert.deepEqual(config.flows, {
      idleTimeoutMs: 30_000,
      maxFlows: 200_000,
      newFlowsPerSourcePerSecond: 20,
    });
  });

  test('relative file paths resolve against the working folder', () => {
    const config = loadRelayConfig(undefined, {
      ...env,
      VOICE_EDGE_RELAY_ROUTING_TABLE__CONFIG_MAP__NAME: undefined,
      VOICE_EDGE_RELAY_ROUTING_TABLE__FILE: 'tables/routing.yaml',
      VOICE_EDGE_RELAY_ROUTING_KEYS__FILE: 'keys.yaml',
    });
    assert.deepEqual(config.routingTable, { file: join(process.cwd(), 'tables', 'routing.yaml') });
    assert.equal(config.routingKeys?.file, join(process.cwd(), 'keys.yaml'));
  });

  test('missing fields: one line naming each field and the variable that sets it', () => {
    const error = assertConfigError(
      () => loadRelayConfig(undefined, { VOICE_EDGE_ROUTING_KEYS: env.VOICE_EDGE_ROUTING_KEYS }),
      /^invalid relay config \(no --config file: VOICE_EDGE_RELAY_\* variables only\): /,
      /clusterId: [^;]*\(VOICE_EDGE_RELAY_CLUSTER_ID\)/,
      /listen: [^;]*\(VOICE_EDGE_RELAY_LISTEN\)/,
      /routingTable: required[^;]*\(VOICE_EDGE_RELAY_ROUTING_TABLE__…\)/,
    );
    assert.ok(!error.message.includes('\n'), error.message);
    assertConfigError(
      () => loadRelayConfig(undefined, { ...env, VOICE_EDGE_RELAY_FLOWS__MAX_FLOWS: '0' }),
      /flows\.maxFlows: .*\(VOICE_EDGE_RELAY_FLOWS__MAX_FLOWS\)/,
    );
    assertConfigError(
      () => loadRelayConfig(undefined, { ...env, VOICE_EDGE_ROUTING_KEYS: undefined }),
      /^invalid relay config \(no --config file: VOICE_EDGE_RELAY_\* variables only\): routingKeys\.file is required \(or set VOICE_EDGE_ROUTING_KEYS\)$/,
    );
  });
});
