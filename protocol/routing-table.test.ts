import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import {
  parseRoutingTable,
  RoutingTableSchema,
  serializeRoutingTable,
  TransceiverState,
} from './routing-table.ts';
import { formatIssues } from './schema.ts';

const full = {
  clusterId: 3,
  generation: 17,
  transceivers: [
    { id: 0, tunnel: '10.0.0.1:7000', state: 'active', api: 'http://10.0.0.1:8080/' },
    { id: 4294967295, tunnel: '[fd00::2]:7000', state: 'draining' },
    { id: 5, tunnel: '10.0.0.5:7000', state: 'draining', drainingSince: 1_773_500_966 },
  ],
  peers: [
    { clusterId: 4, relays: ['198.51.100.1:3478', '[2001:db8::1]:3478'], region: 'eu-west' },
    { clusterId: 0, relays: ['203.0.113.9:3478'] },
  ],
};

function errorOf(input: unknown): string {
  const result = parseRoutingTable(input);
  assert.equal(result.ok, false, 'expected a rejection');
  return result.ok ? '' : result.error;
}

describe('parseRoutingTable: valid tables', () => {
  it('fills defaults for a minimal table', () => {
    assert.deepEqual(parseRoutingTable({ clusterId: 1 }), {
      ok: true,
      table: { clusterId: 1, generation: 0, transceivers: [], peers: [], edgeRelays: [], relaySources: [] },
    });
  });

  it('parses every field and turns addresses into transport addresses', () => {
    const result = parseRoutingTable(full);
    assert.ok(result.ok);
    assert.deepEqual(result.table, {
      clusterId: 3,
      generation: 17,
      transceivers: [
        {
          id: 0,
          tunnel: { family: 4, address: '10.0.0.1', port: 7000 },
          state: 'active',
          api: 'http://10.0.0.1:8080/',
        },
        { id: 4294967295, tunnel: { family: 6, address: 'fd00::2', port: 7000 }, state: 'draining' },
        {
          id: 5,
          tunnel: { family: 4, address: '10.0.0.5', port: 7000 },
          state: 'draining',
          drainingSince: 1_773_500_966,
        },
      ],
      peers: [
        {
          clusterId: 4,
          relays: [
            { family: 4, address: '198.51.100.1', port: 3478 },
            { family: 6, address: '2001:db8::1', port: 3478 },
          ],
          region: 'eu-west',
        },
        { clusterId: 0, relays: [{ family: 4, address: '203.0.113.9', port: 3478 }] },
      ],
      edgeRelays: [],
      relaySources: [],
    });
  });

  it('accepts the cluster ID limits 0 and 65535', () => {
    assert.equal(parseRoutingTable({ clusterId: 0 }).ok, true);
    assert.equal(parseRoutingTable({ clusterId: 65535 }).ok, true);
  });

  it('normalizes IPv6 tunnel addresses', () => {
    const result = parseRoutingTable({
      clusterId: 1,
      transceivers: [{ id: 1, tunnel: '[FD00:0:0:0:0:0:0:0002]:7000', state: 'active' }],
    });
    assert.ok(result.ok);
    assert.deepEqual(result.table.transceivers[0]!.tunnel, { family: 6, address: 'fd00::2', port: 7000 });
  });

  it('reads the YAML a file or ConfigMap would hold', () => {
    const yaml = [
      'clusterId: 3',
      'generation: 2',
      'transceivers:',
      '  - id: 1',
      '    tunnel: 10.0.0.1:7000',
      '    state: active',
      'peers: []',
    ].join('\n');
    const result = parseRoutingTable(parseYaml(yaml));
    assert.ok(result.ok);
    assert.equal(result.table.transceivers[0]!.tunnel.port, 7000);
  });

  it('accepts drainingSince (Unix seconds, 0..2^32-1) on a draining transceiver', () => {
    for (const drainingSince of [0, 1_773_500_966, 0xffffffff]) {
      const result = parseRoutingTable({
        clusterId: 1,
        transceivers: [{ id: 1, tunnel: '10.0.0.1:7000', state: 'draining', drainingSince }],
      });
      assert.ok(result.ok, String(drainingSince));
      assert.equal(result.table.transceivers[0]!.drainingSince, drainingSince);
    }
  });

  it('leaves drainingSince undefined when the table does not give it', () => {
    const result = parseRoutingTable(full);
    assert.ok(result.ok);
    assert.deepEqual(
      result.table.transceivers.map((entry) => [entry.state, entry.drainingSince]),
      [
        ['active', undefined],
        ['draining', undefined],
        ['draining', 1_773_500_966],
      ],
    );
    assert.equal('drainingSince' in result.table.transceivers[1]!, false);
  });

  it('reads drainingSince from YAML', () => {
    const yaml = [
      'clusterId: 3',
      'transceivers:',
      '  - id: 1',
      '    tunnel: 10.0.0.1:7000',
      '    state: draining',
      '    drainingSince: 1773500966',
    ].join('\n');
    const result = parseRoutingTable(parseYaml(yaml));
    assert.ok(result.ok);
    assert.equal(result.table.transceivers[0]!.drainingSince, 1_773_500_966);
  });

  it('exposes the transceiver states', () => {
    assert.deepEqual(TransceiverState.options, ['active', 'draining']);
    assert.equal(RoutingTableSchema.safeParse({ clusterId: 1 }).success, true);
  });

  it('formatIssues joins path and message of every issue', () => {
    const parsed = RoutingTableSchema.safeParse({ clusterId: -1, transceivers: [{ id: 'x' }] });
    assert.equal(parsed.success, false);
    assert.equal(
      formatIssues(parsed.error!),
      'clusterId: Too small: expected number to be >=0; ' +
        'transceivers.0.id: Invalid input: expected number, received string; ' +
        'transceivers.0.tunnel: Invalid input: expected string, received undefined; ' +
        'transceivers.0.state: Invalid option: expected one of "active"|"draining"',
    );
  });
});

describe('parseRoutingTable: errors name the field', () => {
  const transceiver = { id: 1, tunnel: '10.0.0.1:7000', state: 'active' };
  const cases: [string, unknown, string][] = [
    ['null', null, '(root): Invalid input: expected object, received null'],
    ['an array', [], '(root): Invalid input: expected object, received array'],
    ['a string', 'table', '(root): Invalid input: expected object, received string'],
    ['no clusterId', {}, 'clusterId: Invalid input: expected number, received undefined'],
    ['clusterId 65536', { clusterId: 65536 }, 'clusterId: Too big: expected number to be <=65535'],
    ['clusterId -1', { clusterId: -1 }, 'clusterId: Too small: expected number to be >=0'],
    ['clusterId 1.5', { clusterId: 1.5 }, 'clusterId: Invalid input: expected int, received number'],
    ['clusterId as text', { clusterId: '1' }, 'clusterId: Invalid input: expected number, received string'],
    [
      'negative generation',
      { clusterId: 1, generation: -1 },
      'generation: Too small: expected number to be >=0',
    ],
    ['unknown top-level field', { clusterId: 1, bogus: true }, '(root): Unrecognized key: "bogus"'],
    [
      'tunnel port 0',
      { clusterId: 1, transceivers: [{ ...transceiver, tunnel: '10.0.0.1:0' }] },
      'transceivers.0.tunnel: "10.0.0.1:0" has port 0',
    ],
    [
      'transceivers not a list',
      { clusterId: 1, transceivers: {} },
      'transceivers: Invalid input: expected array',
    ],
    [
      'unknown transceiver field',
      { clusterId: 1, transceivers: [{ ...transceiver, weight: 3 }] },
      'transceivers.0: Unrecognized key: "weight"',
    ],
    [
      'transceiver id 2^32',
      { clusterId: 1, transceivers: [{ ...transceiver, id: 4294967296 }] },
      'transceivers.0.id: Too big: expected number to be <=4294967295',
    ],
    [
      'transceiver id -1',
      { clusterId: 1, transceivers: [{ ...transceiver, id: -1 }] },
      'transceivers.0.id: Too small: expected number to be >=0',
    ],
    [
      'tunnel host name',
      { clusterId: 1, transceivers: [{ ...transceiver, tunnel: 'transceiver-0:7000' }] },
      'transceivers.0.tunnel: "transceiver-0:7000" does not start with an IP literal',
    ],
    [
      'tunnel port 65536',
      { clusterId: 1, transceivers: [{ ...transceiver, tunnel: '10.0.0.1:65536' }] },
      'transceivers.0.tunnel: "10.0.0.1:65536" is not an address of the form ip:port or [ipv6]:port',
    ],
    [
      'unbracketed IPv6 tunnel',
      { clusterId: 1, transceivers: [{ ...transceiver, tunnel: 'fd00::1:7000' }] },
      'transceivers.0.tunnel: "fd00::1:7000" is not an address of the form',
    ],
    [
      'unknown state',
      { clusterId: 1, transceivers: [{ ...transceiver, state: 'paused' }] },
      'transceivers.0.state: Invalid option: expected one of "active"|"draining"',
    ],
    [
      'drainingSince on an active transceiver',
      { clusterId: 1, transceivers: [{ ...transceiver, drainingSince: 1_773_500_966 }] },
      'transceivers.0.drainingSince: only a draining transceiver has drainingSince',
    ],
    [
      'drainingSince on the second transceiver, which is active',
      {
        clusterId: 1,
        transceivers: [
          { ...transceiver, state: 'draining', drainingSince: 1 },
          { ...transceiver, id: 2, tunnel: '10.0.0.2:7000', drainingSince: 1 },
        ],
      },
      'transceivers.1.drainingSince: only a draining transceiver has drainingSince',
    ],
    [
      'drainingSince 2^32',
      { clusterId: 1, transceivers: [{ ...transceiver, state: 'draining', drainingSince: 4294967296 }] },
      'transceivers.0.drainingSince: Too big: expected number to be <=4294967295',
    ],
    [
      'drainingSince in milliseconds',
      {
        clusterId: 1,
        transceivers: [{ ...transceiver, state: 'draining', drainingSince: 1_773_500_966_000 }],
      },
      'transceivers.0.drainingSince: Too big: expected number to be <=4294967295',
    ],
    [
      'drainingSince -1',
      { clusterId: 1, transceivers: [{ ...transceiver, state: 'draining', drainingSince: -1 }] },
      'transceivers.0.drainingSince: Too small: expected number to be >=0',
    ],
    [
      'drainingSince 1.5',
      { clusterId: 1, transceivers: [{ ...transceiver, state: 'draining', drainingSince: 1.5 }] },
      'transceivers.0.drainingSince: Invalid input: expected int, received number',
    ],
    [
      'drainingSince as a date string',
      {
        clusterId: 1,
        transceivers: [{ ...transceiver, state: 'draining', drainingSince: '2026-03-14T15:09:26Z' }],
      },
      'transceivers.0.drainingSince: Invalid input: expected number, received string',
    ],
    [
      'api not a URL',
      { clusterId: 1, transceivers: [{ ...transceiver, api: 'not a url' }] },
      'transceivers.0.api: Invalid URL',
    ],
    [
      'duplicate transceiver id',
      { clusterId: 1, transceivers: [transceiver, { ...transceiver, tunnel: '10.0.0.2:7000' }] },
      'transceivers.1.id: duplicate id 1',
    ],
    [
      'duplicate tunnel, written differently',
      {
        clusterId: 1,
        transceivers: [
          { ...transceiver, tunnel: '[fd00::1]:7000' },
          { ...transceiver, id: 2, tunnel: '[fd00:0:0::0:1]:7000' },
        ],
      },
      'transceivers.1.tunnel: duplicate [fd00::1]:7000',
    ],
    [
      'peer is this cluster',
      { clusterId: 1, peers: [{ clusterId: 1, relays: ['1.2.3.4:3478'] }] },
      'peers.0.clusterId: a peer cannot be this cluster',
    ],
    [
      'peer without relays',
      { clusterId: 1, peers: [{ clusterId: 2, relays: [] }] },
      'peers.0.relays: Too small: expected array to have >=1 items',
    ],
    [
      'peer relay not an address',
      { clusterId: 1, peers: [{ clusterId: 2, relays: ['1.2.3.4:3478', 'relay.example:3478'] }] },
      'peers.0.relays.1: "relay.example:3478" does not start with an IP literal',
    ],
    [
      'empty peer region',
      { clusterId: 1, peers: [{ clusterId: 2, relays: ['1.2.3.4:1'], region: '' }] },
      'peers.0.region: Too small: expected string to have >=1 characters',
    ],
    [
      'edge relay not an address or CIDR',
      { clusterId: 1, edgeRelays: ['10.0.0.0/8', 'edge.example'] },
      'edgeRelays.1: "edge.example" does not start with an IP address',
    ],
    [
      'edge relay prefix too long',
      { clusterId: 1, edgeRelays: ['10.0.0.0/33'] },
      'edgeRelays.0: "10.0.0.0/33" has a prefix length outside 0..32',
    ],
    [
      'unknown peer field',
      { clusterId: 1, peers: [{ clusterId: 2, relays: ['1.2.3.4:1'], weight: 1 }] },
      'peers.0: Unrecognized key: "weight"',
    ],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      const error = errorOf(input);
      assert.ok(
        error.includes(expected),
        `${JSON.stringify(error)} does not contain ${JSON.stringify(expected)}`,
      );
    });
  }

  it('reports every problem, separated by "; "', () => {
    const error = errorOf({
      clusterId: 1,
      extra: 1,
      transceivers: [{ id: 1, tunnel: 'x', state: 'active' }],
    });
    assert.deepEqual(error.split('; ').sort(), [
      '(root): Unrecognized key: "extra"',
      'transceivers.0.tunnel: "x" is not an address of the form ip:port or [ipv6]:port',
    ]);
  });

  it('never throws, whatever the input', () => {
    const entry = fc.record(
      {
        id: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.constant(2 ** 32), fc.string()),
        tunnel: fc.oneof(fc.constantFrom('10.0.0.1:1', '[::1]:1', 'x', '10.0.0.1:99999'), fc.anything()),
        state: fc.oneof(fc.constantFrom('active', 'draining'), fc.anything()),
        drainingSince: fc.oneof(fc.integer({ min: -1, max: 2 ** 32 }), fc.anything()),
        api: fc.oneof(fc.constant('http://a/'), fc.anything()),
      },
      { requiredKeys: [] },
    );
    const table = fc.record(
      {
        clusterId: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.anything()),
        generation: fc.anything(),
        transceivers: fc.oneof(fc.array(fc.oneof(entry, fc.anything()), { maxLength: 4 }), fc.anything()),
        peers: fc.oneof(
          fc.array(
            fc.record({
              clusterId: fc.integer({ min: 0, max: 3 }),
              relays: fc.array(fc.oneof(fc.constant('1.2.3.4:5'), fc.anything())),
            }),
            { maxLength: 3 },
          ),
          fc.anything(),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(table, fc.anything()), (input) => {
        const result = parseRoutingTable(input);
        assert.equal(typeof result.ok, 'boolean');
        if (!result.ok) assert.ok(result.error.length > 0);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseRoutingTable: edge relays', () => {
  it('reads addresses and CIDRs, and writes them back normalised (omitted when empty)', () => {
    const result = parseRoutingTable({
      clusterId: 1,
      edgeRelays: ['198.18.2.2', '10.1.2.3/16', '2001:DB8::/32', '::ffff:192.0.2.0/120'],
    });
    assert.ok(result.ok, result.ok ? '' : result.error);
    assert.deepEqual(
      result.table.edgeRelays.map((cidr) => [cidr.family, cidr.prefixLength]),
      [
        [4, 32],
        [4, 16],
        [6, 32],
        [4, 24],
      ],
    );
    const written = serializeRoutingTable(result.table) as { edgeRelays?: string[] };
    assert.deepEqual(written.edgeRelays, ['198.18.2.2/32', '10.1.0.0/16', '2001:db8::/32', '192.0.2.0/24']);
    const none = parseRoutingTable({ clusterId: 1 });
    assert.ok(none.ok);
    assert.equal('edgeRelays' in (serializeRoutingTable(none.table) as object), false);
  });

  it('relaySources: addresses or CIDRs of the relays, written back in canonical form, omitted when empty', () => {
    const result = parseRoutingTable({ clusterId: 1, relaySources: ['10.88.0.7', 'fd00::7/128'] });
    assert.ok(result.ok, result.ok ? '' : result.error);
    const written = serializeRoutingTable(result.table) as { relaySources?: string[] };
    assert.deepEqual(written.relaySources, ['10.88.0.7/32', 'fd00::7/128']);
    assert.match(errorOf({ clusterId: 1, relaySources: ['relay-1'] }), /relaySources\.0/);
    const none = parseRoutingTable({ clusterId: 1 });
    assert.ok(none.ok);
    assert.equal('relaySources' in (serializeRoutingTable(none.table) as object), false);
  });
});

describe('serializeRoutingTable', () => {
  it('writes addresses back as text and omits absent optional fields', () => {
    const result = parseRoutingTable(full);
    assert.ok(result.ok);
    assert.deepEqual(serializeRoutingTable(result.table), full);
  });

  it('round-trips through JSON', () => {
    const first = parseRoutingTable(full);
    assert.ok(first.ok);
    const again = parseRoutingTable(JSON.parse(JSON.stringify(serializeRoutingTable(first.table))));
    assert.deepEqual(again, first);
  });

  it('writes drainingSince when present, and only then', () => {
    const result = parseRoutingTable(full);
    assert.ok(result.ok);
    const written = serializeRoutingTable(result.table) as { transceivers: Record<string, unknown>[] };
    assert.deepEqual(
      written.transceivers.map((entry) => entry.drainingSince),
      [undefined, undefined, 1_773_500_966],
    );
    assert.deepEqual(
      written.transceivers.map((entry) => 'drainingSince' in entry),
      [false, false, true],
    );
  });

  it('round-trips drainingSince at the ends of its range', () => {
    for (const drainingSince of [0, 0xffffffff]) {
      const document = {
        clusterId: 1,
        generation: 0,
        transceivers: [{ id: 1, tunnel: '10.0.0.1:7000', state: 'draining', drainingSince }],
        peers: [],
      };
      const first = parseRoutingTable(document);
      assert.ok(first.ok);
      const written = serializeRoutingTable(first.table);
      assert.deepEqual(written, document);
      assert.deepEqual(parseRoutingTable(JSON.parse(JSON.stringify(written))), first);
    }
  });

  it('writes defaults explicitly', () => {
    const result = parseRoutingTable({ clusterId: 9 });
    assert.ok(result.ok);
    assert.deepEqual(serializeRoutingTable(result.table), {
      clusterId: 9,
      generation: 0,
      transceivers: [],
      peers: [],
    });
  });
});
