// The profile's parts name functions by file: a file that moves must take its pattern with it, or
// the part silently reads 0 % (as the Opus parts did when audio/ left transceiver/).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { COMPONENTS } from './profile.ts';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

test("every part of the profile names a function in a file of the tree (or of a dependency, or V8's)", () => {
  const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n');
  for (const component of COMPONENTS) {
    if (component.file.test('')) continue; // V8's own entries: (garbage collector)
    const url = (path: string) => `file://${join(root, path)}`;
    const own = files.filter((path) => component.file.test(url(path)));
    if (own.length === 0) {
      // A dependency's file (the ws library): it is under node_modules, not tracked.
      assert.match(
        component.file.source,
        /^ws/,
        `${component.name}: no file of the tree matches ${component.file}`,
      );
      continue;
    }
    assert.equal(own.length, 1, `${component.name}: ${own.join(', ')}`);
    const source = readFileSync(join(root, own[0]!), 'utf8');
    assert.ok(source.includes(component.fn), `${component.name}: ${own[0]} has no ${component.fn}`);
  }
});
