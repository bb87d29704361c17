import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { KeyringDocumentSchema, parseKeyringDocument } from './keyring.ts';
import { decodeUfrag, encodeUfrag } from './ufrag.ts';

const secret16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const secret32 = Buffer.alloc(32, 0xa5);
const b64 = (bytes: Buffer) => bytes.toString('base64');

function errorOf(input: unknown): string {
  const result = parseKeyringDocument(input);
  assert.equal(result.ok, false, 'expected a rejection');
  return result.ok ? '' : result.error;
}

describe('parseKeyringDocument: valid documents', () => {
  it('builds a keyring whose current key is the highest id by default', () => {
    const result = parseKeyringDocument({
      keys: [
        { id: 1, secret: b64(secret16) },
        { id: 2, secret: b64(secret32) },
      ],
    });
    assert.ok(result.ok);
    assert.deepEqual(result.keyring.ids, [1, 2]);
    assert.equal(result.keyring.current.id, 2);
    assert.deepEqual(result.keyring.get(1)?.secret, secret16);
    assert.deepEqual(result.keyring.get(2)?.secret, secret32);
  });

  it('honours current', () => {
    const result = parseKeyringDocument({
      current: 1,
      keys: [
        { id: 1, secret: b64(secret16) },
        { id: 2, secret: b64(secret32) },
      ],
    });
    assert.ok(result.ok);
    assert.equal(result.keyring.current.id, 1);
  });

  it('accepts ids 0 and 255', () => {
    const result = parseKeyringDocument({
      keys: [
        { id: 0, secret: b64(secret16) },
        { id: 255, secret: b64(secret16) },
      ],
    });
    assert.ok(result.ok);
    assert.equal(result.keyring.current.id, 255);
  });

  it('accepts base64 with and without padding', () => {
    for (const bytes of [secret16, Buffer.alloc(17, 1), Buffer.alloc(18, 2), secret32]) {
      for (const text of [b64(bytes), b64(bytes).replace(/=+$/, '')]) {
        const result = parseKeyringDocument({ keys: [{ id: 1, secret: text }] });
        assert.ok(result.ok, text);
        assert.deepEqual(result.keyring.get(1)?.secret, bytes);
      }
    }
  });

  it('reads the YAML document described in keyring.ts, and its keys sign and verify ufrags', () => {
    const yaml = `current: 2\nkeys:\n  - id: 1\n    secret: ${b64(secret16)}\n  - id: 2\n    secret: ${b64(secret32)}\n`;
    const result = parseKeyringDocument(parseYaml(yaml));
    assert.ok(result.ok);
    const ufrag = encodeUfrag(
      { clusterId: 1, transceiverId: 2, keyId: 1, issuedAt: 1_773_500_966, nonce: Buffer.alloc(6) },
      { id: 1, secret: secret16 },
    );
    assert.equal(decodeUfrag(ufrag, result.keyring).ok, true);
  });

  it('exposes the schema', () => {
    assert.equal(KeyringDocumentSchema.safeParse({ keys: [{ id: 1, secret: b64(secret16) }] }).success, true);
  });
});

describe('parseKeyringDocument: errors name the field', () => {
  const good = b64(secret16);
  const cases: [string, unknown, string][] = [
    ['null', null, '(root): Invalid input: expected object, received null'],
    ['a string', 'keys', '(root): Invalid input: expected object, received string'],
    ['no keys', {}, 'keys: Invalid input: expected array, received undefined'],
    ['empty keys', { keys: [] }, 'keys: Too small: expected array to have >=1 items'],
    [
      'unknown top-level field',
      { keys: [{ id: 1, secret: good }], rotation: 'daily' },
      '(root): Unrecognized key: "rotation"',
    ],
    [
      'unknown key field',
      { keys: [{ id: 1, secret: good, algorithm: 'sha256' }] },
      'keys.0: Unrecognized key: "algorithm"',
    ],
    ['id 256', { keys: [{ id: 256, secret: good }] }, 'keys.0.id: Too big: expected number to be <=255'],
    ['id -1', { keys: [{ id: -1, secret: good }] }, 'keys.0.id: Too small: expected number to be >=0'],
    [
      'id 1.5',
      { keys: [{ id: 1.5, secret: good }] },
      'keys.0.id: Invalid input: expected int, received number',
    ],
    ['no secret', { keys: [{ id: 1 }] }, 'keys.0.secret: Invalid input: expected string, received undefined'],
    [
      'secret as a number',
      { keys: [{ id: 1, secret: 12 }] },
      'keys.0.secret: Invalid input: expected string',
    ],
    [
      '15-byte secret',
      { keys: [{ id: 1, secret: b64(secret16.subarray(1)) }] },
      'keys.0.secret: must decode to at least 16 bytes',
    ],
    ['empty secret', { keys: [{ id: 1, secret: '' }] }, 'keys.0.secret: must be base64'],
    ['not base64', { keys: [{ id: 1, secret: 'this is not base64!' }] }, 'keys.0.secret: must be base64'],
    [
      'URL-safe base64',
      { keys: [{ id: 1, secret: `${good.slice(0, 20)}-_` }] },
      'keys.0.secret: must be base64',
    ],
    [
      'whitespace inside',
      { keys: [{ id: 1, secret: `${good.slice(0, 10)} ${good.slice(10)}` }] },
      'keys.0.secret: must be base64',
    ],
    ['trailing newline', { keys: [{ id: 1, secret: `${good}\n` }] }, 'keys.0.secret: must be base64'],
    [
      'padding in the middle',
      { keys: [{ id: 1, secret: `AAAA=AAAA${good}` }] },
      'keys.0.secret: must be base64',
    ],
    [
      'three padding characters',
      { keys: [{ id: 1, secret: `${b64(Buffer.alloc(16))}=` }] },
      'keys.0.secret: must be base64',
    ],
    // Lengths base64 cannot have, and stray trailing bits: Buffer.from would silently drop them.
    ['25 characters', { keys: [{ id: 1, secret: 'A'.repeat(25) }] }, 'keys.0.secret: must be base64'],
    [
      'truncated by one character',
      { keys: [{ id: 1, secret: b64(secret32).slice(0, -2) }] },
      'keys.0.secret: must be base64',
    ],
    [
      'non-zero trailing bits',
      { keys: [{ id: 1, secret: `${good.slice(0, 21)}B==` }] },
      'keys.0.secret: must be base64',
    ],
    [
      'duplicate id',
      {
        keys: [
          { id: 1, secret: good },
          { id: 1, secret: good },
        ],
      },
      'keys.1.id: duplicate id',
    ],
    ['current not a key', { current: 9, keys: [{ id: 1, secret: good }] }, 'current: no key has id 9'],
    [
      'current 256',
      { current: 256, keys: [{ id: 1, secret: good }] },
      'current: Too big: expected number to be <=255',
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

  it('reports several problems at once', () => {
    const error = errorOf({
      current: 7,
      keys: [
        { id: 1, secret: 'bad!' },
        { id: 1, secret: good },
      ],
    });
    assert.deepEqual(error.split('; ').sort(), [
      'current: no key has id 7',
      'keys.0.secret: must be base64',
      'keys.1.id: duplicate id',
    ]);
  });

  it('never throws, whatever the input', () => {
    const key = fc.record(
      {
        id: fc.oneof(fc.integer({ min: -1, max: 256 }), fc.anything()),
        secret: fc.oneof(fc.constant(good), fc.base64String(), fc.string(), fc.anything()),
      },
      { requiredKeys: [] },
    );
    const document = fc.record(
      {
        current: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.anything()),
        keys: fc.oneof(fc.array(fc.oneof(key, fc.anything()), { maxLength: 4 }), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(document, fc.anything()), (input) => {
        const result = parseKeyringDocument(input);
        if (result.ok) assert.ok(result.keyring.current.secret.length >= 16);
        else assert.ok(result.error.length > 0);
      }),
      { numRuns: 1000 },
    );
  });
});
