import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importsOf, LAYERS, layerViolations } from './import-layers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every .ts file of the project's folders, by path relative to the root. */
function tree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts'))
        files.set(relative(ROOT, path).split('\\').join('/'), readFileSync(path, 'utf8'));
    }
  };
  for (const folder of Object.keys(LAYERS)) walk(join(ROOT, folder));
  return files;
}

test('the tree keeps its layers', () => {
  const files = tree();
  assert.ok(files.size > 300, `${files.size} files read`);
  assert.deepEqual(layerViolations(files), []);
});

test('a wrong import is caught: relay → transceiver, protocol → anything, product code → the test harness', () => {
  const files = new Map([
    [
      'relay/flow.ts',
      "import { Call } from '../transceiver/call.ts';\nimport { x } from '../protocol/stun.ts';",
    ],
    ['protocol/codec.ts', "export { loadConfig } from '../config/config-file.ts';"],
    ['signaling/pick.ts', "const edge = await import('../test/support/edge.ts');"],
    ['cli/caller.ts', "import { tone } from '../audio/tone.ts';"],
    ['cli/call.ts', "import { Call } from '../transceiver/call.ts';"],
    // Unit tests may reach across the layers (to check a service's output with another's schema).
    ['relay/flow.test.ts', "import { Call } from '../transceiver/call.ts';"],
  ]);
  assert.deepEqual(layerViolations(files), [
    'relay/flow.ts → transceiver/call.ts',
    'protocol/codec.ts → config/config-file.ts',
    'signaling/pick.ts → test/support/edge.ts',
    'cli/call.ts → transceiver/call.ts',
  ]);
});

test('imports are read in every form the tree uses', () => {
  assert.deepEqual(
    importsOf(
      [
        "import { a } from './a.ts';",
        "import type { B } from '../b.ts';",
        "export * from './c.ts';",
        "import './d.ts';",
        "const e = await import('../e.ts');",
        "import { f } from 'node:fs';",
      ].join('\n'),
    ),
    ['./a.ts', '../b.ts', './c.ts', './d.ts', '../e.ts'],
  );
});
