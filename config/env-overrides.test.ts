import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { applyEnvOverrides, ConfigError, envVariableFor, invalidConfigError } from './env-overrides.ts';

describe('envVariableFor', () => {
  test('the inverse of applyEnvOverrides: camelCase paths → SCREAMING_SNAKE with __ between fields', () => {
    assert.equal(envVariableFor('P_', ['clusterId']), 'P_CLUSTER_ID');
    assert.equal(
      envVariableFor('P_', ['routingTable', 'configMap', 'name']),
      'P_ROUTING_TABLE__CONFIG_MAP__NAME',
    );
    assert.equal(envVariableFor('P_', ['redis', 'url']), 'P_REDIS__URL');
    for (const path of [['flows', 'newFlowsPerSourcePerSecond'], ['socketBufferBytes'], ['http', 'port']]) {
      const variable = envVariableFor('VOICE_EDGE_X_', path);
      const applied = applyEnvOverrides({}, { [variable]: '5' }, 'VOICE_EDGE_X_');
      let target: unknown = applied;
      for (const segment of path) target = (target as Record<string, unknown>)[segment];
      assert.equal(target, 5, `${variable} must set ${path.join('.')}`);
    }
  });

  test('a path into a list stops at the list (lists are set whole)', () => {
    assert.equal(envVariableFor('P_', ['listen', 1]), 'P_LISTEN');
    assert.equal(envVariableFor('P_', ['peers', 0, 'relays']), 'P_PEERS');
  });
});

describe('applyEnvOverrides: addresses', () => {
  test('IP addresses, bare or with ports (IPv6 bracketed), unquoted; lists of them quoted', () => {
    const applied = applyEnvOverrides(
      {},
      {
        P_V4: '10.88.0.7:7000',
        P_V6: '[fd00::7]:7000',
        P_LOOPBACK: '[::1]:3478',
        P_MAPPED: '[::ffff:192.0.2.1]:3478',
        P_HOST: 'fd00::7',
        P_WILDCARD: '::',
        P_LOOPBACK_HOST: '::1',
        P_LIST: '["0.0.0.0:3478", "[::]:3478"]',
      },
      'P_',
    );
    assert.deepEqual(applied, {
      v4: '10.88.0.7:7000',
      v6: '[fd00::7]:7000',
      loopback: '[::1]:3478',
      mapped: '[::ffff:192.0.2.1]:3478',
      host: 'fd00::7',
      wildcard: '::',
      loopbackHost: '::1',
      list: ['0.0.0.0:3478', '[::]:3478'],
    });
  });

  test('anything else that is not YAML is still an error naming the variable', () => {
    assert.throws(
      () => applyEnvOverrides({}, { P_LIST: '[fd00::7' }, 'P_'),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^P_LIST: not a valid YAML value/);
        return true;
      },
    );
  });
});

describe('invalidConfigError', () => {
  const schema = z.strictObject({ clusterId: z.number(), http: z.strictObject({ port: z.number() }) });
  const error = schema.safeParse({ http: { port: 'x' } }).error!;

  test('from a file: names the file and the fields', () => {
    const result = invalidConfigError('relay', '/etc/relay.yaml', 'P_', error);
    assert.ok(result instanceof ConfigError);
    assert.match(result.message, /^invalid relay config \/etc\/relay\.yaml: clusterId: .*; http\.port: /);
    assert.doesNotMatch(result.message, /P_/);
  });

  test('from the environment: names each field and its variable, on one line', () => {
    const result = invalidConfigError('relay', undefined, 'P_', error);
    assert.match(result.message, /^invalid relay config \(no --config file: P_\* variables only\): /);
    assert.match(result.message, /clusterId: [^;]* \(P_CLUSTER_ID\); http\.port: [^;]* \(P_HTTP__PORT\)$/);
    const missingSection = schema.safeParse({ clusterId: 1 }).error!;
    assert.match(
      invalidConfigError('relay', undefined, 'P_', missingSection).message,
      /http: .* \(P_HTTP__…\)$/,
    );
  });
});
