import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WatchedFile } from './watched-file.ts';

/** Polls `predicate` until it holds (or fails after `timeoutMs`). */
async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Records what a WatchedFile reports. */
function recorder() {
  const changes: string[] = [];
  const errors: Error[] = [];
  return {
    changes,
    errors,
    onChange: (text: string) => changes.push(text),
    onError: (error: Error) => errors.push(error),
  };
}

describe('WatchedFile', () => {
  let dir: string;
  let path: string;
  const open: WatchedFile[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'voice-edge-watch-'));
    path = join(dir, 'routing.yaml');
  });
  afterEach(() => {
    for (const file of open.splice(0)) file.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function watched(target = path): WatchedFile {
    const file = new WatchedFile(target);
    open.push(file);
    return file;
  }

  test('start resolves with the current content', async () => {
    writeFileSync(path, 'generation: 1\n');
    const r = recorder();
    const file = watched();
    assert.equal(file.path, path);
    assert.equal(await file.start(r.onChange, r.onError, { debounceMs: 5 }), 'generation: 1\n');
    assert.deepEqual(r.changes, []);
  });

  test('start rejects when the file cannot be read', async () => {
    const r = recorder();
    await assert.rejects(watched().start(r.onChange, r.onError), { code: 'ENOENT' });
    assert.deepEqual(r.errors, []);
  });

  test('an in-place write is seen', async () => {
    writeFileSync(path, 'a');
    const r = recorder();
    await watched().start(r.onChange, r.onError, { debounceMs: 5 });
    writeFileSync(path, 'b');
    await waitFor(() => r.changes.length === 1, 'the change');
    assert.deepEqual(r.changes, ['b']);
    assert.deepEqual(r.errors, []);
  });

  test('an atomic rename replace is seen, and the temp file is not read', async () => {
    writeFileSync(path, 'a');
    const r = recorder();
    await watched().start(r.onChange, r.onError, { debounceMs: 5 });
    const temp = join(dir, '.routing.yaml.tmp');
    writeFileSync(temp, 'b');
    renameSync(temp, path);
    await waitFor(() => r.changes.length === 1, 'the change');
    assert.deepEqual(r.changes, ['b']);
    // Again: the watch is on the folder, so it survives the inode swap.
    writeFileSync(temp, 'c');
    renameSync(temp, path);
    await waitFor(() => r.changes.length === 2, 'the second change');
    assert.deepEqual(r.changes, ['b', 'c']);
    assert.deepEqual(r.errors, []);
  });

  test('a Kubernetes ConfigMap-style symlink swap (..data) is seen', async () => {
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'routing.yaml'), 'v1');
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync(join('..data', 'routing.yaml'), path);
    const r = recorder();
    assert.equal(await watched().start(r.onChange, r.onError, { debounceMs: 5 }), 'v1');
    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'routing.yaml'), 'v2');
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor(() => r.changes.length === 1, 'the swap');
    assert.deepEqual(r.changes, ['v2']);
  });

  test('rewriting the same content calls nothing; other files in the folder are ignored', async () => {
    writeFileSync(path, 'same');
    const r = recorder();
    await watched().start(r.onChange, r.onError, { debounceMs: 5 });
    writeFileSync(path, 'same');
    writeFileSync(join(dir, 'other.yaml'), 'other');
    await sleep(100);
    writeFileSync(path, 'different');
    await waitFor(() => r.changes.length === 1, 'the change');
    assert.deepEqual(r.changes, ['different']);
  });

  test('a deleted file is reported to onError; its return is a change', async () => {
    writeFileSync(path, 'a');
    const r = recorder();
    await watched().start(r.onChange, r.onError, { debounceMs: 5 });
    unlinkSync(path);
    await waitFor(() => r.errors.length >= 1, 'the error');
    assert.equal((r.errors[0] as NodeJS.ErrnoException).code, 'ENOENT');
    writeFileSync(path, 'b');
    await waitFor(() => r.changes.length === 1, 'the change');
    assert.deepEqual(r.changes, ['b']);
  });

  test('the poll finds changes the watcher does not report in time', async () => {
    writeFileSync(path, 'a');
    const r = recorder();
    // The watcher's debounce is far away, so only the poll can see this change.
    await watched().start(r.onChange, r.onError, { debounceMs: 60_000, pollMs: 20 });
    writeFileSync(path, 'b');
    await waitFor(() => r.changes.length === 1, 'the poll');
    assert.deepEqual(r.changes, ['b']);
  });

  test('close() stops every callback', async () => {
    writeFileSync(path, 'a');
    const r = recorder();
    const file = watched();
    await file.start(r.onChange, r.onError, { debounceMs: 5, pollMs: 10 });
    writeFileSync(path, 'b');
    await waitFor(() => r.changes.length === 1, 'the change');
    file.close();
    writeFileSync(path, 'c');
    const temp = join(dir, 'tmp');
    writeFileSync(temp, 'd');
    renameSync(temp, path);
    unlinkSync(path);
    await sleep(150);
    assert.deepEqual(r.changes, ['b']);
    assert.deepEqual(r.errors, []);
    file.close(); // twice is fine
  });

  test('close() while a read is in flight: nothing is reported afterwards', async () => {
    // The file is gone, so every poll's read fails; close() at varying moments, some of them while a
    // read is under way. Nothing may be reported once close() has returned.
    let late = 0;
    for (let round = 0; round < 40; round++) {
      writeFileSync(path, 'a');
      let closed = false;
      const file = watched();
      await file.start(
        () => {
          if (closed) late++;
        },
        () => {
          if (closed) late++;
        },
        { debounceMs: 0, pollMs: 1 },
      );
      unlinkSync(path);
      await sleep(round % 5);
      for (let spin = 0; spin < round * 7; spin++) await new Promise(setImmediate);
      file.close();
      closed = true;
    }
    await sleep(50);
    assert.equal(late, 0);
  });
});
