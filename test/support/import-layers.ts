// Which top-level folder may import which (docs/architecture.md): the layers of the tree, checked
// over every import of the project's own files so that they stay true. Pure: the checker takes file
// paths and sources, `import-layers.test.ts` feeds it the tree.
//
// A rule lists what a folder's files may import besides their own folder: folders, or single files
// and subfolders where one part of another folder is shared on purpose (each with its reason).
// Node built-ins and npm packages are not the project's and are not checked. The layers are the
// product's: unit tests (`*.test.ts`) may reach across them (an operator test reads the objects it
// writes back through the relay's own config schema; a transceiver test calls the real echo agent).
import { dirname, join, normalize } from 'node:path';

export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  // Wire formats and pure codecs: nothing of the project below them.
  protocol: [],
  config: ['protocol'],
  // What every service shares that is no wire format: retry timing, abortable waits, the HTTP face.
  runtime: [],
  // One Kubernetes client and informer for everything that watches or writes the API.
  kube: ['protocol', 'runtime'],
  routing: ['protocol', 'config', 'runtime', 'kube'],
  // The guard in front of werift's private members (the transceiver's tunnel, the callers' RTCP).
  webrtc: [],
  // Tones, Opus, RTP and PCM conversions: the transceiver's media path and the callers' share them.
  audio: ['protocol'],
  relay: ['protocol', 'config', 'routing', 'runtime'],
  transceiver: ['protocol', 'config', 'routing', 'runtime', 'audio', 'webrtc'],
  signaling: ['protocol', 'config', 'routing', 'runtime'],
  operator: [
    'protocol',
    'config',
    'runtime',
    'kube',
    'routing',
    // The backend protocols a pool may name, and the transceiver's env prefix the pods are given.
    'transceiver/backend-wire.ts',
    'transceiver/config.ts',
    // The encoder settings a pool may name, with their defaults (no codec loaded).
    'audio/opus-application.ts',
  ],
  agents: ['protocol', 'config'],
  cli: ['protocol', 'config', 'audio', 'webrtc'],
  // The whole edge in one process.
  local: ['protocol', 'config', 'routing', 'relay', 'transceiver', 'signaling', 'agents'],
  crds: ['protocol', 'config', 'operator'],
  // The benchmarks run the real parts with the tests' harness.
  bench: [
    'protocol',
    'config',
    'routing',
    'audio',
    'relay',
    'transceiver',
    'signaling',
    'cli',
    'test/support/',
  ],
  test: ['*'],
};

/** The relative specifiers `source` imports or re-exports (static and dynamic). */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

function allowed(rules: readonly string[], target: string): boolean {
  return rules.some(
    (rule) => rule === '*' || target === rule || target.startsWith(rule.endsWith('/') ? rule : `${rule}/`),
  );
}

/**
 * Every import that crosses a layer it may not, as `from → to` (paths relative to the root).
 * `files`: path (relative, `/`-separated) → source. Files outside the folders of LAYERS are not checked.
 */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [path, source] of files) {
    const folder = path.split('/')[0]!;
    const rules = LAYERS[folder];
    if (rules === undefined) continue;
    if (path.endsWith('.test.ts')) continue;
    for (const specifier of importsOf(source)) {
      const target = normalize(join(dirname(path), specifier))
        .split('\\')
        .join('/');
      if (target.split('/')[0] === folder) continue;
      if (allowed(rules, target)) continue;
      violations.push(`${path} → ${target}`);
    }
  }
  return violations;
}
