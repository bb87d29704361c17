// The global relay tier's relay configuration: mode, peers, edge relays.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatCidr } from '../protocol/cidr.ts';
import { ConfigError, loadRelayConfig } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'voice-edge-relay-global-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function load(text: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `relay-${counter++}.yaml`);
  writeFileSync(file, text);
  return loadRelayConfig(file, { VOICE_EDGE_ROUTING_KEYS: 'keys: []', ...env });
}

describe('relay config: the global relay tier', () => {
  test('defaults: cluster mode, no peers, no edge relays', () => {
    const config = load('clusterId: 1\nlisten: ["0.0.0.0:3478"]\nroutingTable: { file: r.yaml }\n');
    assert.equal(config.mode, 'cluster');
    assert.deepEqual(config.peers, []);
    assert.deepEqual(config.edgeRelays, []);
  });

  test('an edge relay needs no routing table; peers and edge relays are parsed', () => {
    const config = load(
      [
        'mode: edge',
        'clusterId: 1',
        'listen: ["198.18.2.2:3478"]',
        'peers:',
        '  - { clusterId: 2, region: us-west, relays: ["198.18.4.2:3478", "[2001:db8::4]:3478"] }',
        'edgeRelays: ["198.18.2.0/24", "203.0.113.9"]',
      ].join('\n'),
    );
    assert.equal(config.mode, 'edge');
    assert.equal(config.routingTable, undefined);
    assert.deepEqual(config.peers[0]?.relays[1], { family: 6, address: '2001:db8::4', port: 3478 });
    assert.deepEqual(config.edgeRelays.map(formatCidr), ['198.18.2.0/24', '203.0.113.9/32']);
  });

  test('environment overrides: mode, peers, edge relays', () => {
    const config = load('clusterId: 1\nlisten: ["0.0.0.0:3478"]\n', {
      VOICE_EDGE_RELAY_MODE: 'edge',
      VOICE_EDGE_RELAY_PEERS: '[{clusterId: 2, relays: ["198.18.4.2:3478"]}]',
      VOICE_EDGE_RELAY_EDGE_RELAYS: '["10.0.0.0/8"]',
    });
    assert.equal(config.mode, 'edge');
    assert.equal(config.peers[0]?.clusterId, 2);
    assert.equal(formatCidr(config.edgeRelays[0]!), '10.0.0.0/8');
  });

  test('errors name the field', () => {
    const cases: Array<[string, RegExp]> = [
      ['clusterId: 1\nlisten: ["0.0.0.0:3478"]\n', /routingTable: required: .*\(in mode cluster\)/],
      ['mode: hub\nclusterId: 1\nlisten: ["0.0.0.0:3478"]\n', /mode: /],
      [
        'mode: edge\nclusterId: 1\nlisten: ["0.0.0.0:3478"]\npeers: [{ clusterId: 2, relays: [] }]\n',
        /peers\.0\.relays/,
      ],
      [
        'mode: edge\nclusterId: 1\nlisten: ["0.0.0.0:3478"]\nedgeRelays: ["10.0.0.0/40"]\n',
        /edgeRelays\.0: "10\.0\.0\.0\/40" has a prefix length/,
      ],
    ];
    for (const [text, pattern] of cases) {
      assert.throws(
        () => load(text),
        (error: unknown) => error instanceof ConfigError && pattern.test(error.message),
      );
    }
  });
});
