// What the tests need from the machine besides npm packages, in one list. `npm test` starts here: a
// missing Debian package is named in one line with the command that installs it, instead of failing
// deep inside a test. `.ci/run` installs what `--packages` prints.
//
//   node test/support/preflight.ts               exit 1 with one line if something is missing
//   node test/support/preflight.ts --packages    print the missing packages' names (for apt-get), exit 0
//   ... --bench                          also what the benchmarks need (`npm run bench:*`)
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

interface Requirement {
  /** A command that must be on the PATH, or a check of its own. */
  readonly needs: string | (() => boolean);
  /** The Debian packages that provide it. */
  readonly packages: readonly string[];
  /** Only the benchmarks need it. */
  readonly benchOnly?: boolean;
}

const REQUIREMENTS: readonly Requirement[] = [
  // The flow cache's tests start their own Redis.
  { needs: 'redis-server', packages: ['redis-server'] },
  // The browser of the e2e tests, driven by playwright-core (which cannot download one here).
  { needs: 'chromium', packages: ['chromium'] },
  // Speech for the audio tests and the transceiver benchmark's conversation load, resampled by sox.
  { needs: 'espeak-ng', packages: ['espeak-ng'] },
  { needs: 'sox', packages: ['sox'] },
  // The global tier's simulated regions and the test kubelet: namespaces and veths, NAT and
  // kube-proxy rules, conntrack flushes; the ICE-TCP tests block UDP with iptables.
  { needs: 'ip', packages: ['iproute2'] },
  { needs: 'iptables', packages: ['iptables'] },
  { needs: 'conntrack', packages: ['conntrack'] },
  // The test cluster's PKI; pods that die with the test process; one kubelet per node IP at a time.
  { needs: 'openssl', packages: ['openssl'] },
  { needs: 'setpriv', packages: ['util-linux'] },
  { needs: 'flock', packages: ['util-linux'] },
  // The WAN emulator's TUN helper and the relay benchmark's load generator are built with cc.
  { needs: 'cc', packages: ['gcc', 'libc6-dev'] },
  // The Pipecat bot's virtual environment (Debian splits venv and ensurepip into python3-venv).
  { needs: () => run('python3', ['-c', 'import venv, ensurepip']), packages: ['python3', 'python3-venv'] },
  // The relay benchmark runs coturn beside the relay, each pinned to a core.
  { needs: 'turnserver', packages: ['coturn'], benchOnly: true },
  { needs: 'taskset', packages: ['util-linux'], benchOnly: true },
];

function run(command: string, args: readonly string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/** The Debian packages to install, in list order, each once. */
export function missingPackages(options: { bench: boolean }): string[] {
  const missing = new Set<string>();
  for (const requirement of REQUIREMENTS) {
    if (requirement.benchOnly && !options.bench) continue;
    const present = typeof requirement.needs === 'string' ? onPath(requirement.needs) : requirement.needs();
    if (!present) for (const name of requirement.packages) missing.add(name);
  }
  return [...missing];
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const missing = missingPackages({ bench: args.includes('--bench') });
  if (args.includes('--packages')) {
    if (missing.length > 0) process.stdout.write(`${missing.join(' ')}\n`);
  } else if (missing.length > 0) {
    process.stderr.write(
      `the tests need Debian packages that are missing: ${missing.join(' ')}; install them with: ` +
        `sudo apt-get install -y --no-install-recommends ${missing.join(' ')}\n`,
    );
    process.exit(1);
  }
}
