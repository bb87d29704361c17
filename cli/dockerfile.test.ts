// The Dockerfile cannot be built here (no container engine), so its invariants are checked against
// the code: the entry point is cli/voice-edge.ts, the user is not root, every file the components
// load is copied and not left out by .dockerignore, and runtime code imports no dev dependency
// (the image installs production dependencies only).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMPONENTS } from './components.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions by stage (comments dropped, continuation lines joined). */
function parseDockerfile(text: string): Instruction[][] {
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Instruction[][] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') stages.push([]);
    assert.ok(stages.length > 0, `"${line}" comes before any FROM`);
    stages.at(-1)!.push(instruction);
  }
  return stages;
}

/** Relative paths (from the repository root) of every file the components load, and the packages they import. */
function runtimeClosure(): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [
    'cli/voice-edge.ts',
    ...Object.values(COMPONENTS).map((component) => normalize(join('cli', component.main))),
  ];
  const builtins = new Set(builtinModules);
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    if (!existsSync(join(root, file))) continue; // a component not yet in the tree (its folder is still checked)
    files.add(file);
    if (statSync(join(root, file)).isDirectory()) {
      for (const entry of readdirSync(join(root, file), { recursive: true, encoding: 'utf8' })) {
        if (statSync(join(root, file, entry)).isFile()) files.add(join(file, entry));
      }
      continue;
    }
    if (!file.endsWith('.ts')) continue;
    const source = read(file);
    const specifiers = [
      ...source.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/gm),
      ...source.matchAll(/(?:^|[\s;])import\s*['"]([^'"]+)['"]/gm),
      ...source.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
      ...source.matchAll(/new URL\(\s*['"](\.{1,2}\/[^'"]*)['"]\s*,\s*import\.meta\.url/g),
    ].map((match) => match[1]!);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) {
        pending.push(normalize(join(dirname(file), specifier)));
      } else if (!specifier.startsWith('node:') && !builtins.has(specifier)) {
        const parts = specifier.split('/');
        packages.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
      }
    }
  }
  return { files, packages };
}

/** Whether .dockerignore leaves `path` out of the build context (last matching pattern wins). */
function ignoredByDockerignore(patterns: readonly string[], path: string): boolean {
  const glob = (part: string) =>
    part
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]');
  // `**/` is any number of folders; `*` and `?` stay within one.
  const toRegExp = (pattern: string) => new RegExp(`^${pattern.split('**/').map(glob).join('(?:.*/)?')}$`);
  // A pattern that matches a folder leaves out everything in it.
  const prefixes = path.split('/').map((_, index, parts) => parts.slice(0, index + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = toRegExp(negated ? raw.slice(1) : raw);
    if (prefixes.some((prefix) => pattern.test(prefix))) ignored = !negated;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const stages = parseDockerfile(read('Dockerfile'));
  const final = stages.at(-1)!;
  const all = (keyword: string, stage = final) => stage.filter((i) => i.keyword === keyword);
  const dockerignore = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  test('every base image is pinned to a Node 24 release tag', () => {
    for (const stage of stages) {
      const image = stage[0]!.args.split(/\s+/)[0]!;
      assert.match(image, /^node:24\.\d+\.\d+-[a-z]+(-slim)?$/, image);
    }
    const locked = JSON.parse(read('package.json')).devDependencies.node as string;
    assert.ok(final[0]!.args.startsWith(`node:${locked}-`), `the project runs on Node ${locked}`);
  });

  test('runs as a non-root user, by number (Kubernetes can then verify runAsNonRoot)', () => {
    const users = all('USER');
    assert.equal(users.length, 1);
    const [uid, gid] = users[0]!.args.split(':');
    assert.match(uid!, /^\d+$/);
    assert.notEqual(Number(uid), 0);
    assert.notEqual(Number(gid ?? uid), 0);
    const userAt = final.indexOf(users[0]!);
    assert.ok(
      final.slice(userAt + 1).every((i) => i.keyword !== 'RUN' && i.keyword !== 'COPY'),
      'nothing is installed or copied after dropping root',
    );
  });

  test('WORKDIR /app, ENTRYPOINT node cli/voice-edge.ts (the k8s contract), usage by default', () => {
    assert.deepEqual(
      all('WORKDIR').map((i) => i.args),
      ['/app'],
    );
    const entrypoints = all('ENTRYPOINT');
    assert.equal(entrypoints.length, 1);
    assert.deepEqual(JSON.parse(entrypoints[0]!.args), ['node', 'cli/voice-edge.ts']);
    assert.ok(existsSync(join(root, 'cli/voice-edge.ts')));
    assert.deepEqual(JSON.parse(all('CMD')[0]!.args), ['--help']);
  });

  test('production dependencies only, exactly as locked, with the fixes of patches/ applied', () => {
    const runs = stages.flatMap((stage) => all('RUN', stage)).map((i) => i.args);
    assert.ok(
      runs.some((run) =>
        /\bnpm ci\b.*&& npx patch-package --error-on-fail\b.*&& npm prune --omit=dev\b/s.test(run),
      ),
      runs.join('\n'),
    );
    assert.ok(
      stages.flatMap((stage) => all('COPY', stage)).some((i) => /^patches \.\/patches$/.test(i.args)),
    );
    assert.ok(all('COPY').some((i) => /^--from=\S+ \/app\/node_modules \.\/node_modules$/.test(i.args)));
    assert.ok(
      all('COPY').some((i) => /^package\.json \.\/$/.test(i.args)),
      'package.json ("type": "module")',
    );
  });

  const { files, packages } = runtimeClosure();
  const copied = new Set(
    all('COPY')
      .filter((i) => !i.args.startsWith('--from'))
      .map((i) => i.args.split(/\s+/))
      .filter(([source, target]) => target === `./${source}`)
      .map(([source]) => source!),
  );

  test('every folder the components load code from is copied', () => {
    const folders = new Set([...files].map((file) => file.split('/')[0]!));
    for (const component of Object.values(COMPONENTS))
      folders.add(normalize(join('cli', component.main)).split('/')[0]!);
    assert.ok(
      folders.has('relay') && folders.has('protocol') && folders.has('operator'),
      [...folders].join(' '),
    );
    assert.deepEqual(
      [...folders].filter((folder) => !copied.has(folder)),
      [],
      'folders loaded but not copied',
    );
    // And nothing copied that no component loads (a stale COPY hides a missing one).
    assert.deepEqual(
      [...copied].filter((folder) => !folders.has(folder)),
      [],
      'folders copied but never loaded',
    );
  });

  test('.dockerignore leaves out tests and helpers but no file a component loads', () => {
    const ignored = [...files].filter((file) => ignoredByDockerignore(dockerignore, file));
    assert.deepEqual(ignored, [], 'runtime files left out of the build context');
    assert.ok(files.has('relay/worker-thread.ts'), 'the relay worker (loaded by URL) is in the closure');
    assert.ok(
      [...files].some((file) => file.startsWith('signaling/demo/')),
      "the demo page's assets are in it",
    );
    for (const excluded of [
      'relay/config.test.ts',
      'node_modules/zod/package.json',
      'test/support/net.ts',
      '.git/HEAD',
    ]) {
      assert.ok(ignoredByDockerignore(dockerignore, excluded), excluded);
    }
    for (const kept of ['package.json', 'package-lock.json', 'cli/voice-edge.ts']) {
      assert.ok(!ignoredByDockerignore(dockerignore, kept), kept);
    }
  });

  test('runtime code imports production dependencies only (the image has no devDependencies)', () => {
    const manifest = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    assert.ok(packages.has('@kubernetes/client-node') && packages.has('werift'), [...packages].join(' '));
    assert.deepEqual(
      [...packages].filter((name) => !(name in manifest.dependencies)),
      [],
      'imported by runtime code but not in dependencies',
    );
  });

  test('the closure is computed from real files (relative to the repository)', () => {
    for (const file of files) assert.ok(!relative(root, join(root, file)).startsWith('..'), file);
    assert.ok(files.size > 50, `${files.size} files`);
  });
});
