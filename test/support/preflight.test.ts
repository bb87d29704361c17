import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const PREFLIGHT = fileURLToPath(new URL('./preflight.ts', import.meta.url));

/** Runs the preflight with PATH holding only `commands` (empty scripts that succeed). */
function preflight(commands: readonly string[], args: readonly string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'voice-edge-preflight-'));
  try {
    for (const command of commands) {
      writeFileSync(join(dir, command), '#!/bin/sh\nexit 0\n');
      chmodSync(join(dir, command), 0o755);
    }
    return spawnSync(process.execPath, [PREFLIGHT, ...args], {
      env: { PATH: dir },
      encoding: 'utf8',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ALL_FOR_TESTS = [
  'redis-server',
  'chromium',
  'espeak-ng',
  'sox',
  'ip',
  'iptables',
  'conntrack',
  'openssl',
  'setpriv',
  'flock',
  'cc',
  'python3',
];

test('a machine with everything: nothing to say, exit 0', () => {
  const result = preflight(ALL_FOR_TESTS);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
});

test('missing packages are named in one line with the command that installs them', () => {
  const result = preflight(ALL_FOR_TESTS.filter((c) => c !== 'redis-server' && c !== 'conntrack'));
  assert.equal(result.status, 1);
  assert.equal(
    result.stderr,
    'the tests need Debian packages that are missing: redis-server conntrack; install them with: ' +
      'sudo apt-get install -y --no-install-recommends redis-server conntrack\n',
  );
});

test('--packages prints the names for apt-get; --bench adds what the benchmarks need, each once', () => {
  assert.equal(preflight(ALL_FOR_TESTS, ['--packages']).stdout, '');
  assert.equal(preflight(ALL_FOR_TESTS, ['--packages', '--bench']).stdout, 'coturn util-linux\n');
  const bare = preflight([], ['--packages']);
  assert.equal(bare.status, 0);
  assert.equal(
    bare.stdout,
    'redis-server chromium espeak-ng sox iproute2 iptables conntrack openssl util-linux gcc libc6-dev python3 python3-venv\n',
  );
});
