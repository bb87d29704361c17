import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  base32Decode,
  base32Encode,
  decodeUfrag,
  deriveIcePassword,
  encodeUfrag,
  MIN_KEY_BYTES,
  NONCE_BYTES,
  newUfrag,
  type RoutingKey,
  RoutingKeyring,
  UFRAG_LENGTH,
  UFRAG_VERSION,
  type UfragDecodeError,
  type UfragFields,
} from './ufrag.ts';

interface VectorFile {
  format: string;
  keys: { id: number; secret: string }[];
  currentKeyId: number;
  valid: {
    name: string;
    keyId: number;
    clusterId: number;
    transceiverId: number;
    issuedAt: number;
    nonce: string;
    ufrag: string;
    icePassword: string;
  }[];
  invalid: { name: string; ufrag: string; reason: UfragDecodeError }[];
}

// Read, never regenerated here: the file is the published answer (see generate-ufrag-vectors.ts).
const vectors = JSON.parse(
  readFileSync(new URL('./testdata/ufrag-vectors.json', import.meta.url), 'utf8'),
) as VectorFile;
const vectorKeys: RoutingKey[] = vectors.keys.map((k) => ({
  id: k.id,
  secret: Buffer.from(k.secret, 'base64'),
}));
const vectorKeyring = new RoutingKeyring(vectorKeys);

const ICE_CHAR = /^[a-z0-9]+$/;
const key = (id: number, fill = id + 1, length = 32): RoutingKey => ({
  id,
  secret: Buffer.alloc(length, fill),
});
/** 2026-03-14T15:09:26Z. */
const ISSUED_AT = 1_773_500_966;
const fields = (overrides: Partial<UfragFields> = {}): UfragFields => ({
  clusterId: 7,
  transceiverId: 1234,
  keyId: 1,
  issuedAt: ISSUED_AT,
  nonce: Buffer.from('0a0b0c0d0e0f', 'hex'),
  ...overrides,
});

describe('ufrag-vectors.json', () => {
  it('is the v1 format with keys, valid vectors and every decode error', () => {
    assert.equal(vectors.format, 'voice-edge ufrag v1');
    assert.deepEqual(
      vectorKeys.map((k) => [k.id, k.secret.length]),
      [
        [0, 16],
        [1, 32],
        [255, 48],
      ],
    );
    assert.equal(vectorKeyring.current.id, vectors.currentKeyId);
    assert.ok(vectors.valid.length >= 10, `${vectors.valid.length} valid vectors`);
    // The issue time at both ends of its range and at a realistic value.
    const issueTimes = new Set(vectors.valid.map((v) => v.issuedAt));
    for (const issuedAt of [0, 0xffffffff, ISSUED_AT]) assert.ok(issueTimes.has(issuedAt), String(issuedAt));
    assert.deepEqual([...new Set(vectors.invalid.map((v) => v.reason))].sort(), [
      'bad-alphabet',
      'bad-length',
      'bad-tag',
      'bad-version',
      'unknown-key',
    ]);
  });

  for (const vector of vectors.valid) {
    it(`valid: ${vector.name}`, () => {
      const k = vectorKeyring.get(vector.keyId);
      assert.ok(k, `key ${vector.keyId}`);
      const input = {
        clusterId: vector.clusterId,
        transceiverId: vector.transceiverId,
        keyId: vector.keyId,
        issuedAt: vector.issuedAt,
        nonce: Buffer.from(vector.nonce, 'hex'),
      };
      assert.equal(encodeUfrag(input, k), vector.ufrag);
      assert.deepEqual(decodeUfrag(vector.ufrag, vectorKeyring), { ok: true, fields: input });
      assert.equal(deriveIcePassword(vector.ufrag, k), vector.icePassword);
    });
  }

  for (const vector of vectors.invalid) {
    it(`invalid: ${vector.name} → ${vector.reason}`, () => {
      assert.deepEqual(decodeUfrag(vector.ufrag, vectorKeyring), { ok: false, reason: vector.reason });
    });
  }
});

describe('base32', () => {
  // RFC 4648 §10, lowercase and without padding.
  for (const [input, output] of [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ] as const) {
    it(`encodes ${JSON.stringify(input)} as ${JSON.stringify(output)}`, () => {
      assert.equal(base32Encode(Buffer.from(input)), output);
    });
  }

  it('decodes the RFC 4648 vectors back', () => {
    assert.equal(base32Decode('mzxw6ytb', 5)?.toString(), 'fooba');
    assert.equal(base32Decode('mzxw6ytboi', 6)?.toString(), 'foobar');
    assert.equal(base32Decode('my', 1)?.toString(), 'f');
    assert.equal(base32Decode('', 0)?.length, 0);
  });

  it('refuses characters outside the alphabet, and too few characters', () => {
    for (const text of [
      'MZXW6YTB',
      'mzxw6yt0',
      'mzxw6yt1',
      'mzxw6yt8',
      'mzxw6yt9',
      'mzxw6yt=',
      'mzxw6yté',
      'mzxw 6yt',
    ]) {
      assert.equal(base32Decode(text, 5), undefined, text);
    }
    assert.equal(base32Decode('mzxw6yt', 5), undefined);
    assert.equal(base32Decode('', 1), undefined);
  });

  it('round-trips bytes whose bit length is a multiple of 5', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }).chain((n) => fc.uint8Array({ minLength: n * 5, maxLength: n * 5 })),
        (array) => {
          const bytes = Buffer.from(array);
          const text = base32Encode(bytes);
          assert.equal(text.length, (bytes.length * 8) / 5);
          assert.match(text, /^[a-z2-7]*$/);
          assert.deepEqual(base32Decode(text, bytes.length), bytes);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RoutingKeyring', () => {
  it('needs at least one key', () => {
    assert.throws(() => new RoutingKeyring([]), /at least one routing key/);
  });

  it('accepts ids 0 and 255 and refuses others', () => {
    assert.deepEqual(new RoutingKeyring([key(0), key(255)]).ids, [0, 255]);
    for (const id of [-1, 256, 1.5, Number.NaN]) {
      assert.throws(() => new RoutingKeyring([key(id, 1)]), /is not an integer in 0\.\.255/, String(id));
    }
  });

  it(`needs secrets of at least ${MIN_KEY_BYTES} bytes`, () => {
    assert.equal(MIN_KEY_BYTES, 16);
    assert.doesNotThrow(() => new RoutingKeyring([key(1, 1, 16)]));
    assert.throws(() => new RoutingKeyring([key(1, 1, 15)]), /routing key 1 is shorter than 16 bytes/);
  });

  it('refuses a duplicate id', () => {
    assert.throws(() => new RoutingKeyring([key(3), key(3, 9)]), /routing key id 3 appears twice/);
  });

  it('signs with the highest id by default, or the one named', () => {
    const keys = [key(4), key(9), key(2)];
    assert.equal(new RoutingKeyring(keys).current.id, 9);
    assert.equal(new RoutingKeyring(keys, 2).current.id, 2);
    for (const id of [0, 5]) {
      assert.throws(
        () => new RoutingKeyring(keys, id),
        new RegExp(`current routing key id ${id} is not in the keyring`),
      );
    }
  });

  it('looks keys up by id', () => {
    const keyring = new RoutingKeyring([key(4), key(9)]);
    assert.equal(keyring.get(4)?.secret[0], 5);
    assert.equal(keyring.get(5), undefined);
    assert.deepEqual(keyring.ids, [4, 9]);
  });
});

describe('encodeUfrag', () => {
  const k1 = key(1);

  it('writes the documented layout', () => {
    const ufrag = encodeUfrag(
      fields({ clusterId: 0x0102, transceiverId: 0x03040506, issuedAt: 0x0708090a }),
      k1,
    );
    assert.equal(UFRAG_LENGTH, 40);
    assert.equal(ufrag.length, UFRAG_LENGTH);
    assert.match(ufrag, ICE_CHAR);
    const bytes = base32Decode(ufrag, 25)!;
    assert.equal(bytes.subarray(0, 18).toString('hex'), '0101010203040506' + '0708090a' + '0a0b0c0d0e0f');
    assert.equal(bytes[0], UFRAG_VERSION);
    const tag = createHmac('sha256', k1.secret)
      .update('voice-edge/ufrag/v1')
      .update(bytes.subarray(0, 18))
      .digest();
    assert.deepEqual(bytes.subarray(18), tag.subarray(0, 7));
  });

  it('accepts the ID limits', () => {
    for (const [clusterId, transceiverId] of [
      [0, 0],
      [0xffff, 0xffffffff],
      [0, 0xffffffff],
      [0xffff, 0],
    ]) {
      const ufrag = encodeUfrag(fields({ clusterId, transceiverId }), k1);
      const result = decodeUfrag(ufrag, new RoutingKeyring([k1]));
      assert.ok(result.ok);
      assert.equal(result.fields.clusterId, clusterId);
      assert.equal(result.fields.transceiverId, transceiverId);
    }
    for (const id of [0, 255]) {
      const ufrag = encodeUfrag(fields({ keyId: id }), key(id));
      assert.equal(decodeUfrag(ufrag, new RoutingKeyring([key(id)])).ok, true);
    }
  });

  it('refuses IDs out of range', () => {
    for (const clusterId of [-1, 0x10000, 1.5, Number.NaN]) {
      assert.throws(
        () => encodeUfrag(fields({ clusterId }), k1),
        /cluster ID .* is not an integer in 0\.\.65535/,
      );
    }
    for (const transceiverId of [-1, 0x100000000, 2.5, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => encodeUfrag(fields({ transceiverId }), k1),
        /transceiver ID .* is not an integer in 0\.\.4294967295/,
      );
    }
  });

  it('accepts and round-trips issue times from 0 to 2^32-1', () => {
    const keyring = new RoutingKeyring([k1]);
    for (const issuedAt of [0, 1, ISSUED_AT, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]) {
      const ufrag = encodeUfrag(fields({ issuedAt }), k1);
      assert.equal(ufrag.length, UFRAG_LENGTH);
      assert.deepEqual(
        decodeUfrag(ufrag, keyring),
        { ok: true, fields: fields({ issuedAt }) },
        String(issuedAt),
      );
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (issuedAt) => {
        const result = decodeUfrag(encodeUfrag(fields({ issuedAt }), k1), keyring);
        assert.ok(result.ok);
        assert.equal(result.fields.issuedAt, issuedAt);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an issue time out of range', () => {
    for (const issuedAt of [
      -1,
      0x100000000,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Date.now(), // milliseconds instead of seconds
    ]) {
      assert.throws(
        () => encodeUfrag(fields({ issuedAt }), k1),
        /issue time .* is not a Unix time in seconds within 0\.\.4294967295/,
        String(issuedAt),
      );
    }
  });

  it('refuses a key ID that does not fit a byte, even when it matches the key', () => {
    for (const id of [256, 300, -1]) {
      assert.throws(
        () => encodeUfrag(fields({ keyId: id }), key(id, 1)),
        /key ID .* is not an integer in 0\.\.255/,
      );
    }
  });

  it('refuses a key ID that is not the key', () => {
    assert.throws(() => encodeUfrag(fields({ keyId: 2 }), k1), /ufrag key ID 2 does not match key 1/);
  });

  it(`refuses a nonce that is not ${NONCE_BYTES} bytes`, () => {
    for (const size of [0, 5, 7]) {
      assert.throws(() => encodeUfrag(fields({ nonce: Buffer.alloc(size) }), k1), /nonce must be 6 bytes/);
    }
  });
});

describe('decodeUfrag', () => {
  const k1 = key(1);
  const keyring = new RoutingKeyring([k1]);
  const good = encodeUfrag(fields(), k1);

  it('decodes what encodeUfrag wrote', () => {
    assert.deepEqual(decodeUfrag(good, keyring), { ok: true, fields: fields() });
  });

  it('reports bad-length before anything else', () => {
    for (const text of ['', good.slice(1), `${good}a`, good.slice(0, 32), 'A'.repeat(39), '!'.repeat(41)]) {
      assert.deepEqual(decodeUfrag(text, keyring), { ok: false, reason: 'bad-length' });
    }
  });

  it('reports bad-alphabet for characters outside [a-z2-7]', () => {
    for (const char of [
      'A',
      'Z',
      '0',
      '1',
      '8',
      '9',
      '+',
      '/',
      '=',
      '-',
      ' ',
      '\0',
      'é',
      '\u{1f600}'.slice(0, 1),
    ]) {
      const text = `${char}${good.slice(1)}`;
      assert.deepEqual(
        decodeUfrag(text, keyring),
        { ok: false, reason: 'bad-alphabet' },
        JSON.stringify(char),
      );
    }
  });

  it('reports bad-version, then unknown-key, then bad-tag', () => {
    const bytes = base32Decode(good, 25)!;
    const withByte = (index: number, value: number) => {
      const copy = Buffer.from(bytes);
      copy[index] = value;
      return base32Encode(copy);
    };
    assert.deepEqual(decodeUfrag(withByte(0, 0), keyring), { ok: false, reason: 'bad-version' });
    assert.deepEqual(decodeUfrag(withByte(0, 2), keyring), { ok: false, reason: 'bad-version' });
    assert.deepEqual(decodeUfrag(withByte(1, 2), keyring), { ok: false, reason: 'unknown-key' });
    for (const index of [2, 3, 4, 7, 8, 9, 10, 11, 12, 17, 18, 24]) {
      assert.deepEqual(
        decodeUfrag(withByte(index, bytes[index]! ^ 1), keyring),
        { ok: false, reason: 'bad-tag' },
        `byte ${index}`,
      );
    }
  });

  it('keeps verifying ufrags of an older key during rotation, until the key is removed', () => {
    const k2 = key(2);
    const old = newUfrag(new RoutingKeyring([k1]), { clusterId: 1, transceiverId: 2 });
    const rotated = new RoutingKeyring([k1, k2]);
    assert.equal(rotated.current.id, 2);
    assert.equal(decodeUfrag(old, rotated).ok, true);
    const fresh = newUfrag(rotated, { clusterId: 1, transceiverId: 2 });
    const decodedFresh = decodeUfrag(fresh, rotated);
    assert.ok(decodedFresh.ok);
    assert.equal(decodedFresh.fields.keyId, 2);
    assert.deepEqual(decodeUfrag(old, new RoutingKeyring([k2])), { ok: false, reason: 'unknown-key' });
    // Same id, different secret: a key that was replaced rather than rotated.
    assert.deepEqual(decodeUfrag(old, new RoutingKeyring([key(1, 99)])), { ok: false, reason: 'bad-tag' });
  });
});

describe('newUfrag', () => {
  it('signs with the current key, dates it nowMs in whole seconds, and takes the nonce from the random source', () => {
    const keyring = new RoutingKeyring([key(1), key(5)]);
    const sizes: number[] = [];
    const ufrag = newUfrag(keyring, { clusterId: 3, transceiverId: 4 }, ISSUED_AT * 1000 + 999, (size) => {
      sizes.push(size);
      return Buffer.alloc(size, 0x42);
    });
    assert.deepEqual(sizes, [NONCE_BYTES]);
    assert.equal(
      ufrag,
      encodeUfrag(
        { clusterId: 3, transceiverId: 4, keyId: 5, issuedAt: ISSUED_AT, nonce: Buffer.alloc(6, 0x42) },
        key(5),
      ),
    );
  });

  it('dates a ufrag with the clock by default', () => {
    const keyring = new RoutingKeyring([key(1)]);
    const before = Math.floor(Date.now() / 1000);
    const result = decodeUfrag(newUfrag(keyring, { clusterId: 1, transceiverId: 1 }), keyring);
    const after = Math.floor(Date.now() / 1000);
    assert.ok(result.ok);
    assert.ok(
      result.fields.issuedAt >= before && result.fields.issuedAt <= after,
      String(result.fields.issuedAt),
    );
  });

  it('refuses a clock outside the issue-time range', () => {
    const keyring = new RoutingKeyring([key(1)]);
    for (const nowMs of [-1, 0x100000000 * 1000, Number.NaN]) {
      assert.throws(
        () => newUfrag(keyring, { clusterId: 1, transceiverId: 1 }, nowMs),
        /issue time/,
        String(nowMs),
      );
    }
    assert.doesNotThrow(() => newUfrag(keyring, { clusterId: 1, transceiverId: 1 }, 0x100000000 * 1000 - 1));
  });

  it('gives a different ufrag each time by default', () => {
    const keyring = new RoutingKeyring([key(1)]);
    const seen = new Set(
      Array.from({ length: 200 }, () => newUfrag(keyring, { clusterId: 1, transceiverId: 1 })),
    );
    assert.equal(seen.size, 200);
    for (const ufrag of seen) assert.equal(decodeUfrag(ufrag, keyring).ok, true);
  });
});

describe('deriveIcePassword', () => {
  const k1 = key(1);
  const ufrag = encodeUfrag(fields(), k1);

  it('is 32 characters of [a-z2-7] (RFC 8839 asks for at least 22 ice-chars)', () => {
    const password = deriveIcePassword(ufrag, k1);
    assert.equal(password.length, 32);
    assert.match(password, /^[a-z2-7]{32}$/);
  });

  it('is HMAC-SHA256(secret, label || ufrag), truncated to 160 bits', () => {
    const digest = createHmac('sha256', k1.secret).update('voice-edge/ice-pwd/v1').update(ufrag).digest();
    assert.equal(deriveIcePassword(ufrag, k1), base32Encode(digest.subarray(0, 20)));
  });

  it('is deterministic and depends on both the ufrag and the key', () => {
    assert.equal(deriveIcePassword(ufrag, k1), deriveIcePassword(ufrag, key(1)));
    assert.notEqual(deriveIcePassword(ufrag, k1), deriveIcePassword(ufrag, key(1, 7)));
    const other = encodeUfrag(fields({ transceiverId: 1235 }), k1);
    assert.notEqual(deriveIcePassword(ufrag, k1), deriveIcePassword(other, k1));
  });
});
