import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadOperatorConfig } from './config.ts';

describe('loadOperatorConfig', () => {
  it('runs with no file and no variables, with the contract defaults', () => {
    const config = loadOperatorConfig(undefined, {});
    assert.equal(config.watchNamespace, '');
    assert.equal(config.image, 'ghcr.io/voice-edge/voice-edge:latest');
    assert.deepEqual(config.http, { host: '0.0.0.0', port: 9095 });
    assert.equal(config.status.intervalMs, 2000);
    assert.equal(config.leaderElection.enabled, true);
    assert.equal(config.leaderElection.leaseName, 'voice-edge-operator');
    assert.equal(config.leaderElection.leaseDurationSeconds, 15);
    assert.equal(config.leaderElection.renewDeadlineMs, 10_000);
    assert.equal(config.faults.crashAt, undefined);
  });

  it('takes the contract variables', () => {
    const config = loadOperatorConfig(undefined, {
      VOICE_EDGE_OPERATOR_IMAGE: 'registry.local/voice-edge:1.2.3',
      VOICE_EDGE_OPERATOR_WATCH_NAMESPACE: 'voice',
      VOICE_EDGE_OPERATOR_LEADER_ELECTION__ENABLED: 'false',
      VOICE_EDGE_OPERATOR_LEADER_ELECTION__NAMESPACE: 'voice-edge-system',
      VOICE_EDGE_OPERATOR_LEADER_ELECTION__LEASE_NAME: 'lead',
      VOICE_EDGE_OPERATOR_HTTP__HOST: '127.0.0.1',
      VOICE_EDGE_OPERATOR_HTTP__PORT: '0',
      VOICE_EDGE_OPERATOR_STATUS__INTERVAL_MS: '500',
      VOICE_EDGE_OPERATOR_POD_NAME: 'voice-edge-operator-7f9-abc',
    });
    assert.equal(config.image, 'registry.local/voice-edge:1.2.3');
    assert.equal(config.watchNamespace, 'voice');
    assert.equal(config.leaderElection.enabled, false);
    assert.equal(config.leaderElection.namespace, 'voice-edge-system');
    assert.equal(config.leaderElection.leaseName, 'lead');
    assert.deepEqual(config.http, { host: '127.0.0.1', port: 0 });
    assert.equal(config.status.intervalMs, 500);
    assert.equal(config.podName, 'voice-edge-operator-7f9-abc');
  });

  it('reads an empty variable as "not set" and a numeric name as text', () => {
    const config = loadOperatorConfig(undefined, {
      VOICE_EDGE_OPERATOR_WATCH_NAMESPACE: '',
      VOICE_EDGE_OPERATOR_POD_NAME: '1234',
    });
    assert.equal(config.watchNamespace, '');
    assert.equal(config.podName, '1234');
  });

  it('reads a file, the environment winning', () => {
    const dir = mkdtempSync(join(tmpdir(), 'operator-config-'));
    const file = join(dir, 'operator.yaml');
    writeFileSync(file, 'workers: 4\nstatus: { intervalMs: 3000 }\n');
    const config = loadOperatorConfig(file, { VOICE_EDGE_OPERATOR_WORKERS: '3' });
    assert.equal(config.workers, 3);
    assert.equal(config.status.intervalMs, 3000);
  });

  it('names the variable of a bad field, and checks timings against each other', () => {
    assert.throws(
      () => loadOperatorConfig(undefined, { VOICE_EDGE_OPERATOR_STATUS__INTERVAL_MS: 'often' }),
      (error: Error) =>
        error instanceof ConfigError && /VOICE_EDGE_OPERATOR_STATUS__INTERVAL_MS/.test(error.message),
    );
    assert.throws(
      () =>
        loadOperatorConfig(undefined, {
          VOICE_EDGE_OPERATOR_LEADER_ELECTION__LEASE_DURATION_SECONDS: '5',
          VOICE_EDGE_OPERATOR_LEADER_ELECTION__RENEW_DEADLINE_MS: '6000',
        }),
      /renewDeadlineMs: must be shorter than leaseDurationSeconds/,
    );
    assert.throws(() => loadOperatorConfig(undefined, { VOICE_EDGE_OPERATOR_TYPO: '1' }), ConfigError);
    assert.throws(
      () => loadOperatorConfig(undefined, { VOICE_EDGE_OPERATOR_FAULTS__CRASH_AT: 'somewhere' }),
      /faults\.crashAt/,
    );
  });
});

describe('status timeout', () => {
  it('defaults to 1 s or half a short interval', () => {
    assert.equal(loadOperatorConfig(undefined, {}).status.timeoutMs, 1000);
    assert.equal(
      loadOperatorConfig(undefined, { VOICE_EDGE_OPERATOR_STATUS__INTERVAL_MS: '500' }).status.timeoutMs,
      250,
    );
  });
});
