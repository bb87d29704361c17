import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RoutingTable } from '../protocol/routing-table.ts';
import { FileRoutingSource, parseRoutingDocument } from './routing-source.ts';

function tableYaml(generation: number, transceivers = 1): string {
  const lines = [`clusterId: 7`, `generation: ${generation}`, 'transceivers:'];
  for (let id = 1; id <= transceivers; id++) {
    lines.push(`  - { id: ${id}, tunnel: "10.0.0.1:${4000 + id}", state: active }`);
  }
  return `${lines.join('\n')}\n`;
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function listener() {
  const tables: RoutingTable[] = [];
  const documents: unknown[] = [];
  const invalid: string[] = [];
  return {
    tables,
    documents,
    invalid,
    onTable(table: RoutingTable, document: unknown) {
      tables.push(table);
      documents.push(document);
    },
    onInvalid(error: string) {
      invalid.push(error);
    },
  };
}

describe('parseRoutingDocument', () => {
  test('YAML and JSON documents', () => {
    const yaml = parseRoutingDocument(tableYaml(3, 2), 'test');
    assert.ok(yaml.ok);
    assert.equal(yaml.table.generation, 3);
    assert.equal(yaml.table.transceivers.length, 2);
    assert.deepEqual(yaml.table.transceivers[1]?.tunnel, { family: 4, address: '10.0.0.1', port: 4002 });
    assert.deepEqual((yaml.document as { transceivers: unknown[] }).transceivers[0], {
      id: 1,
      tunnel: '10.0.0.1:4001',
      state: 'active',
    });
    const json = parseRoutingDocument(
      JSON.stringify({ clusterId: 7, transceivers: [{ id: 9, tunnel: '[::1]:5000', state: 'draining' }] }),
      'test',
    );
    assert.ok(json.ok);
    assert.equal(json.table.generation, 0);
    assert.equal(json.table.transceivers[0]?.state, 'draining');
  });

  test('invalid YAML names the origin', () => {
    const result = parseRoutingDocument('clusterId: [7\n', 'routing table /x.yaml');
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.error : '', /^routing table \/x\.yaml is not valid YAML\/JSON: /);
  });

  test('schema errors name the origin and the field', () => {
    const cases: [string, RegExp][] = [
      [
        'clusterId: 7\ntransceivers: [{ id: 1, tunnel: "nowhere", state: active }]',
        /transceivers\.0\.tunnel/,
      ],
      [
        'clusterId: 7\ntransceivers: [{ id: 1, tunnel: "10.0.0.1:1", state: sleeping }]',
        /transceivers\.0\.state/,
      ],
      ['transceivers: []', /clusterId/],
      ['clusterId: 7\nsurprise: true', /surprise/],
      ['', /\(root\)/],
      ['- 1', /\(root\)/],
    ];
    for (const [text, pattern] of cases) {
      const result = parseRoutingDocument(text, 'origin');
      assert.equal(result.ok, false, text);
      const error = !result.ok ? result.error : '';
      assert.match(error, /^origin: /);
      assert.match(error, pattern);
    }
  });
});

describe('FileRoutingSource', () => {
  let dir: string;
  let path: string;
  const sources: FileRoutingSource[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'voice-edge-routing-'));
    path = join(dir, 'routing.yaml');
  });
  afterEach(() => {
    for (const source of sources.splice(0)) source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function source(): FileRoutingSource {
    const created = new FileRoutingSource(path);
    sources.push(created);
    return created;
  }

  test('start resolves with the first table and does not call the listener for it', async () => {
    writeFileSync(path, tableYaml(1));
    const l = listener();
    const first = await source().start(l);
    assert.equal(first.table.generation, 1);
    assert.equal(first.table.clusterId, 7);
    assert.equal((first.document as { generation: number }).generation, 1);
    await sleep(50);
    assert.deepEqual(l.tables, []);
    assert.deepEqual(l.invalid, []);
  });

  test('start rejects without a file, and with an invalid first table', async () => {
    await assert.rejects(source().start(listener()), { code: 'ENOENT' });
    writeFileSync(path, 'clusterId: nope\n');
    const l = listener();
    await assert.rejects(source().start(l), /routing table .*routing\.yaml: clusterId/);
    // It stopped watching: a later valid file is not delivered.
    writeFileSync(path, tableYaml(2));
    await sleep(100);
    assert.deepEqual(l.tables, []);
    assert.deepEqual(l.invalid, []);
  });

  test('an atomic rename replace and an in-place write are both delivered', async () => {
    writeFileSync(path, tableYaml(1));
    const l = listener();
    await source().start(l);
    const temp = join(dir, '.routing.yaml.tmp');
    writeFileSync(temp, tableYaml(2, 2));
    renameSync(temp, path);
    await waitFor(() => l.tables.length === 1, 'the renamed table');
    assert.equal(l.tables[0]?.generation, 2);
    assert.equal(l.tables[0]?.transceivers.length, 2);
    writeFileSync(path, tableYaml(3, 3));
    await waitFor(() => l.tables.length === 2, 'the rewritten table');
    assert.equal(l.tables[1]?.generation, 3);
    assert.equal((l.documents[1] as { generation: number }).generation, 3);
    assert.deepEqual(l.invalid, []);
  });

  test('an invalid update is reported and never delivered; the next valid one is', async () => {
    writeFileSync(path, tableYaml(1));
    const l = listener();
    await source().start(l);
    writeFileSync(path, 'clusterId: 7\ntransceivers: [{ id: 1, tunnel: "bad", state: active }]\n');
    await waitFor(() => l.invalid.length === 1, 'the schema error');
    assert.match(l.invalid[0]!, /^routing table .*routing\.yaml: transceivers\.0\.tunnel/);
    writeFileSync(path, 'clusterId: [\n');
    await waitFor(() => l.invalid.length === 2, 'the YAML error');
    assert.match(l.invalid[1]!, /not valid YAML/);
    assert.equal(l.tables.length, 0);
    writeFileSync(path, tableYaml(4));
    await waitFor(() => l.tables.length === 1, 'the valid table');
    assert.equal(l.tables[0]?.generation, 4);
  });

  test('a deleted file is reported as invalid', async () => {
    writeFileSync(path, tableYaml(1));
    const l = listener();
    await source().start(l);
    unlinkSync(path);
    await waitFor(() => l.invalid.length >= 1, 'the error');
    assert.match(l.invalid[0]!, /^routing table .*routing\.yaml: .*ENOENT/);
    assert.deepEqual(l.tables, []);
  });

  test('close() stops callbacks', async () => {
    writeFileSync(path, tableYaml(1));
    const l = listener();
    const routing = source();
    await routing.start(l);
    writeFileSync(path, tableYaml(2));
    await waitFor(() => l.tables.length === 1, 'the change');
    routing.close();
    writeFileSync(path, tableYaml(3));
    writeFileSync(path, 'garbage: [');
    unlinkSync(path);
    await sleep(150);
    assert.equal(l.tables.length, 1);
    assert.deepEqual(l.invalid, []);
  });
});
