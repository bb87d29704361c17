// Builds the test cluster's binaries from the Go module proxy (no Kubernetes release binary can be
// downloaded here: docs/testing-kubernetes.md) into a cache outside the work tree, once: `testcluster` (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kubectl in one binary, from test/kube/cluster) and `helm`.
// The testcluster binary's name carries a hash of its Go module files, so editing them rebuilds it.
// Run it directly (`npm run kube:build`) to see a cold build's progress; tests call ensureKubeBinaries().
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../../config/cache-dir.ts';

export interface KubeBinaries {
  /** testcluster etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kubectl … */
  readonly testcluster: string;
  readonly helm: string;
}

export const HELM_MODULE = 'helm.sh/helm/v4/cmd/helm';
export const HELM_VERSION = 'v4.3.1';

const clusterModule = fileURLToPath(new URL('./cluster/', import.meta.url));
const moduleFiles = ['go.mod', 'go.sum', 'main.go'];

/** Hash of the Go module files and build flags: the testcluster binary for exactly this source. */
export async function testclusterSourceHash(buildFlags: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`${buildFlags}\0`);
  for (const name of moduleFiles) {
    hash.update(`${name}\0`);
    hash.update(await readFile(join(clusterModule, name)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

/** The k8s.io/kubernetes version test/kube/cluster/go.mod requires, e.g. v1.37.2. */
async function requiredKubernetesVersion(): Promise<string> {
  const goMod = await readFile(join(clusterModule, 'go.mod'), 'utf8');
  const match = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\s*$/m.exec(goMod);
  if (!match)
    throw new Error('kube build: test/kube/cluster/go.mod does not require k8s.io/kubernetes vX.Y.Z');
  return match[1]!;
}

/**
 * The version stamps Kubernetes' own build (hack/lib/version.sh) sets: without them every component reports
 * v0.0.0-master, and what compares the server version (helm's kubeVersion check, clients) is misled.
 */
function kubernetesVersionLdflags(version: string): string {
  const [major, minor] = version.slice(1).split('.');
  const stamps = { gitVersion: version, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [name, value] of Object.entries(stamps)) flags.push(`-X ${pkg}.${name}=${value}`);
  }
  return flags.join(' ');
}

/** The cached binaries, building whichever is missing (a cold testcluster build takes many minutes). */
export async function ensureKubeBinaries(): Promise<KubeBinaries> {
  const cache = cacheDir();
  await mkdir(cache, { recursive: true });
  const kubernetesVersion = await requiredKubernetesVersion();
  const buildFlags = ['-trimpath', `-ldflags=${kubernetesVersionLdflags(kubernetesVersion)}`];
  const testcluster = join(cache, `testcluster-${await testclusterSourceHash(buildFlags.join(' '))}`);
  const helm = join(cache, `helm-${HELM_VERSION}`);
  await ensureBuilt(
    testcluster,
    `testcluster (Kubernetes ${kubernetesVersion} control plane)`,
    async (out) => {
      await goBuild(['build', ...buildFlags, '-v', '-o', out, '.'], clusterModule, {});
      await removeOtherBuilds(cache, 'testcluster-', out);
    },
  );
  await ensureBuilt(helm, `helm ${HELM_VERSION}`, async (out) => {
    // `go install pkg@version` builds outside any module; GOBIN points it at a private directory.
    const bin = await mkdtemp(`${out}.gobin-`);
    try {
      // As helm's Makefile does, so `helm version` names the release.
      const ldflags = `-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}`;
      await goBuild(
        ['install', '-trimpath', `-ldflags=${ldflags}`, '-v', `${HELM_MODULE}@${HELM_VERSION}`],
        cache,
        {
          GOBIN: bin,
        },
      );
      await rename(join(bin, 'helm'), out);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
  return { testcluster, helm };
}

/**
 * Builds `target` with `build(tmp)` unless it exists, then renames tmp into place (a half-written binary
 * is never visible). A lock file (holding the builder's pid) makes concurrent test processes wait for
 * one build instead of each starting its own; a lock left by a dead process is taken over.
 */
async function ensureBuilt(
  target: string,
  what: string,
  build: (out: string) => Promise<void>,
): Promise<void> {
  const lock = `${target}.lock`;
  let announced = false;
  while (!existsSync(target)) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
    } catch {
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (!processAlive(holder)) {
        await rm(lock, { force: true });
        continue;
      }
      if (!announced) process.stderr.write(`kube build: waiting for process ${holder} to build ${what}\n`);
      announced = true;
      await sleep(1000);
      continue;
    }
    try {
      if (existsSync(target)) return;
      const tmp = `${target}.tmp-${process.pid}`;
      process.stderr.write(
        `kube build: building ${what}\n  into ${target}\n  (with an empty Go build cache this takes many minutes)\n`,
      );
      const started = Date.now();
      try {
        await build(tmp);
        await rename(tmp, target);
      } finally {
        await rm(tmp, { force: true });
      }
      process.stderr.write(`kube build: ${what} built in ${Math.round((Date.now() - started) / 1000)} s\n`);
    } finally {
      await rm(lock, { force: true });
    }
  }
}

/** Binaries of earlier sources (190 MB each) go once a new one is built; running ones keep their inode. */
async function removeOtherBuilds(cache: string, prefix: string, keep: string): Promise<void> {
  for (const entry of await readdir(cache)) {
    const path = join(cache, entry);
    if (!entry.startsWith(prefix) || path === keep || /\.(lock|tmp-\d+)$/.test(entry)) continue;
    await rm(path, { force: true, recursive: true });
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `go <args>` and shows progress: `-v` makes go name each package it compiles (cached ones are not
 * named), so the count says how far a cold build is. On a terminal one line is rewritten in place; in a
 * CI log a line every 30 s.
 */
async function goBuild(args: string[], cwd: string, env: Record<string, string>): Promise<void> {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let compiled = 0;
  let last = '';
  let lastPrinted = 0;
  const errors: string[] = [];
  const show = (force: boolean) => {
    const seconds = Math.round((Date.now() - started) / 1000);
    const line = `kube build: ${compiled} packages compiled, ${seconds} s${last ? ` (${last})` : ''}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 100) - 1)}`);
    else if (force || Date.now() - lastPrinted >= 30_000) {
      process.stderr.write(`${line}\n`);
      lastPrinted = Date.now();
    }
  };
  const child = spawn('go', args, {
    cwd,
    env: { ...process.env, ...env, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim() },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const ticker = setInterval(() => show(false), 1000);
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      // -v lines are bare import paths; anything else (compile errors, downloads) is kept for the error.
      if (/^[\w.~-]+(\/[\w.~+-]+)*$/.test(line)) {
        compiled++;
        last = line;
      } else if (line.trim()) errors.push(line);
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) =>
      reject(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error(
              'kube build: `go` is not on PATH; install Go ≥ 1.26 (the test cluster is built from source)',
            )
          : error,
      ),
    );
    child.once('close', resolve);
  }).finally(() => clearInterval(ticker));
  show(true);
  if (tty) process.stderr.write('\n');
  if (code !== 0) {
    throw new Error(
      `kube build: go ${args.join(' ')} failed (exit ${code}):\n${errors.slice(-40).join('\n')}`,
    );
  }
}

if (import.meta.main) {
  const binaries = await ensureKubeBinaries();
  process.stdout.write(`${JSON.stringify(binaries)}\n`);
}
