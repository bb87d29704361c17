// Generates protocol/testdata/ufrag-vectors.json, the published known-answer vectors of the ufrag
// codec (protocol/ufrag.ts, docs/architecture.md). Every input is deterministic, so running this again must
// reproduce the committed file byte for byte; protocol/ufrag.test.ts reads the file and never runs
// this script. Regenerate (only when the layout changes) with:
//
//   npx node protocol/testdata/generate-ufrag-vectors.ts
//
// JSON format (all strings are lowercase where a case exists):
//
//   {
//     "format": "voice-edge ufrag v1",
//     "comment": "...",
//     "keys": [                        the keyring every vector is decoded with
//       { "id": 0..255, "secret": "<standard base64 of the HMAC key, padded>" }
//     ],
//     "currentKeyId": <id>,            the key new ufrags are signed with (the highest id)
//     "valid": [                       encode(fields, key) = ufrag, decode(ufrag) = fields,
//       {                              deriveIcePassword(ufrag, key) = icePassword
//         "name": "<what the vector exercises>",
//         "keyId": 0..255, "clusterId": 0..65535, "transceiverId": 0..4294967295,
//         "issuedAt": 0..4294967295,   Unix seconds
//         "nonce": "<12 hex digits: the 48-bit nonce>",
//         "ufrag": "<40 chars of [a-z2-7]>",
//         "icePassword": "<32 chars of [a-z2-7]>"
//       }
//     ],
//     "invalid": [                     decode(ufrag) fails with exactly this reason
//       { "name": "...", "ufrag": "<any string>",
//         "reason": "bad-length" | "bad-alphabet" | "bad-version" | "unknown-key" | "bad-tag" }
//     ]
//   }
//
// The ufrag is base32 (RFC 4648 alphabet, lowercase, no padding) of 25 bytes: version (1), key ID,
// cluster ID (uint16 BE), transceiver ID (uint32 BE), issued at (uint32 BE, Unix seconds), nonce
// (6 bytes), then the first 7 bytes of HMAC-SHA256(secret, "voice-edge/ufrag/v1" || the 18 bytes
// before). The ICE password is base32 of the first 20 bytes of
// HMAC-SHA256(secret, "voice-edge/ice-pwd/v1" || ufrag as ASCII).
// The script computes every vector twice, with ufrag.ts and with the independent few lines below
// that follow that description, and refuses to write the file if the two disagree.
import { createHash, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  base32Decode,
  base32Encode,
  decodeUfrag,
  deriveIcePassword,
  encodeUfrag,
  type RoutingKey,
  RoutingKeyring,
  type UfragDecodeError,
} from '../ufrag.ts';

const OUTPUT = new URL('./ufrag-vectors.json', import.meta.url);

const digest = (label: string, bytes: number): Buffer =>
  createHash('sha256').update(label).digest().subarray(0, bytes);

// Secrets of the minimum (16), usual (32) and a long (48) length; ids at both ends of the byte.
const keys: RoutingKey[] = [
  { id: 0, secret: digest('voice-edge test key 0', 16) },
  { id: 1, secret: digest('voice-edge test key 1', 32) },
  {
    id: 255,
    secret: Buffer.concat([digest('voice-edge test key 255a', 32), digest('voice-edge test key 255b', 16)]),
  },
];
const keyring = new RoutingKeyring(keys);
const keyById = (id: number): RoutingKey => keyring.get(id)!;

// Independent implementation of the layout described above.
function rawUfrag(
  version: number,
  keyId: number,
  clusterId: number,
  transceiverId: number,
  issuedAt: number,
  nonce: Buffer,
  secret: Buffer,
): string {
  const bytes = Buffer.alloc(25);
  bytes[0] = version;
  bytes[1] = keyId;
  bytes.writeUInt16BE(clusterId, 2);
  bytes.writeUInt32BE(transceiverId, 4);
  bytes.writeUInt32BE(issuedAt, 8);
  nonce.copy(bytes, 12);
  createHmac('sha256', secret)
    .update('voice-edge/ufrag/v1')
    .update(bytes.subarray(0, 18))
    .digest()
    .copy(bytes, 18, 0, 7);
  return base32Encode(bytes);
}

function rawPassword(ufrag: string, secret: Buffer): string {
  return base32Encode(
    createHmac('sha256', secret)
      .update('voice-edge/ice-pwd/v1')
      .update(ufrag, 'latin1')
      .digest()
      .subarray(0, 20),
  );
}

interface Input {
  name: string;
  keyId: number;
  clusterId: number;
  transceiverId: number;
  issuedAt: number;
  nonce: Buffer;
}

/** 2026-03-14T15:09:26Z: a realistic issue time. */
const TYPICAL_ISSUED_AT = 1_773_500_966;

const inputs: Input[] = [
  {
    name: 'all zero, key 0 (16-byte secret)',
    keyId: 0,
    clusterId: 0,
    transceiverId: 0,
    issuedAt: 0,
    nonce: Buffer.alloc(6),
  },
  {
    name: 'all maximum, key 255',
    keyId: 255,
    clusterId: 0xffff,
    transceiverId: 0xffffffff,
    issuedAt: 0xffffffff,
    nonce: Buffer.alloc(6, 0xff),
  },
  {
    name: 'typical',
    keyId: 1,
    clusterId: 1,
    transceiverId: 42,
    issuedAt: TYPICAL_ISSUED_AT,
    nonce: Buffer.from('010203040506', 'hex'),
  },
  {
    name: 'byte order',
    keyId: 1,
    clusterId: 0x0102,
    transceiverId: 0x01020304,
    issuedAt: 0x11223344,
    nonce: Buffer.from('a1b2c3d4e5f6', 'hex'),
  },
  {
    name: 'cluster max, transceiver 0',
    keyId: 1,
    clusterId: 0xffff,
    transceiverId: 0,
    issuedAt: TYPICAL_ISSUED_AT,
    nonce: Buffer.from('000000000001', 'hex'),
  },
  {
    name: 'cluster 0, transceiver max',
    keyId: 0,
    clusterId: 0,
    transceiverId: 0xffffffff,
    issuedAt: TYPICAL_ISSUED_AT,
    nonce: Buffer.from('800000000000', 'hex'),
  },
  {
    name: 'transceiver 2^31 (sign bit), issued at 2^31 (2038-01-19T03:14:08Z)',
    keyId: 255,
    clusterId: 0x8000,
    transceiverId: 0x80000000,
    issuedAt: 0x80000000,
    nonce: Buffer.from('7fffffffffff', 'hex'),
  },
  {
    name: 'typical, issued at 0 (1970-01-01T00:00:00Z)',
    keyId: 1,
    clusterId: 1,
    transceiverId: 42,
    issuedAt: 0,
    nonce: Buffer.from('010203040506', 'hex'),
  },
  {
    name: 'typical, issued at 2^32-1 (2106-02-07T06:28:15Z)',
    keyId: 1,
    clusterId: 1,
    transceiverId: 42,
    issuedAt: 0xffffffff,
    nonce: Buffer.from('010203040506', 'hex'),
  },
  {
    name: 'typical, issued one second later',
    keyId: 1,
    clusterId: 1,
    transceiverId: 42,
    issuedAt: TYPICAL_ISSUED_AT + 1,
    nonce: Buffer.from('010203040506', 'hex'),
  },
];
for (let i = 0; i < 8; i++) {
  const seed = digest(`voice-edge ufrag vector ${i}`, 16);
  inputs.push({
    name: `pseudo-random ${i}`,
    keyId: keys[i % keys.length]!.id,
    clusterId: seed.readUInt16BE(0),
    transceiverId: seed.readUInt32BE(2),
    issuedAt: seed.readUInt32BE(12),
    nonce: seed.subarray(6, 12),
  });
}

const valid = inputs.map((input) => {
  const key = keyById(input.keyId);
  const ufrag = encodeUfrag(input, key);
  const icePassword = deriveIcePassword(ufrag, key);
  const independent = rawUfrag(
    1,
    input.keyId,
    input.clusterId,
    input.transceiverId,
    input.issuedAt,
    input.nonce,
    key.secret,
  );
  if (ufrag !== independent)
    throw new Error(`${input.name}: ufrag.ts gives ${ufrag}, the layout gives ${independent}`);
  if (icePassword !== rawPassword(ufrag, key.secret)) throw new Error(`${input.name}: ICE password mismatch`);
  return {
    name: input.name,
    keyId: input.keyId,
    clusterId: input.clusterId,
    transceiverId: input.transceiverId,
    issuedAt: input.issuedAt,
    nonce: input.nonce.toString('hex'),
    ufrag,
    icePassword,
  };
});

const typical = valid[2]!.ufrag;
const key1 = keyById(1).secret;
const issuedAt = TYPICAL_ISSUED_AT;
const nonce = Buffer.from('010203040506', 'hex');
const firstLetter = typical.search(/[a-z]/);
const replaceAt = (text: string, index: number, char: string): string =>
  text.slice(0, index) + char + text.slice(index + 1);
/** A different character of the alphabet at `index`. */
const flipAt = (text: string, index: number): string =>
  replaceAt(text, index, text[index] === 'a' ? 'b' : 'a');
/** The typical ufrag with its issue time moved by `seconds` and its tag left as it was. */
const retimed = (seconds: number): string => {
  const bytes = base32Decode(typical, 25)!;
  bytes.writeUInt32BE(bytes.readUInt32BE(8) + seconds, 8);
  return base32Encode(bytes);
};

// Which of the 40 characters carry which field (a boundary character carries bits of both): 0-1
// version, 1-3 key ID, 3-6 cluster ID, 6-12 transceiver ID, 12-19 issued at, 19-28 nonce, 28-39 tag.
const invalid: { name: string; ufrag: string; reason: UfragDecodeError }[] = [
  { name: 'empty', ufrag: '', reason: 'bad-length' },
  { name: '39 characters (last one dropped)', ufrag: typical.slice(0, 39), reason: 'bad-length' },
  { name: '41 characters (one appended)', ufrag: `${typical}a`, reason: 'bad-length' },
  {
    name: '32 characters (the length of the layout without the issue time)',
    ufrag: typical.slice(0, 32),
    reason: 'bad-length',
  },
  { name: 'Chrome minimum ufrag length (4)', ufrag: 'abcd', reason: 'bad-length' },
  { name: '80 characters (two ufrags)', ufrag: typical + typical, reason: 'bad-length' },
  { name: 'uppercase', ufrag: typical.toUpperCase(), reason: 'bad-alphabet' },
  {
    name: 'one uppercase letter',
    ufrag: replaceAt(typical, firstLetter, typical[firstLetter]!.toUpperCase()),
    reason: 'bad-alphabet',
  },
  { name: 'digit 0 (not in base32)', ufrag: replaceAt(typical, 39, '0'), reason: 'bad-alphabet' },
  { name: 'digit 1 (not in base32)', ufrag: replaceAt(typical, 0, '1'), reason: 'bad-alphabet' },
  { name: 'digit 8 (not in base32)', ufrag: replaceAt(typical, 16, '8'), reason: 'bad-alphabet' },
  { name: 'digit 9 (not in base32)', ufrag: replaceAt(typical, 20, '9'), reason: 'bad-alphabet' },
  {
    name: 'ice-char + (RFC 8839 allows it, the codec does not)',
    ufrag: replaceAt(typical, 5, '+'),
    reason: 'bad-alphabet',
  },
  { name: 'ice-char /', ufrag: replaceAt(typical, 6, '/'), reason: 'bad-alphabet' },
  { name: 'padding character', ufrag: replaceAt(typical, 39, '='), reason: 'bad-alphabet' },
  { name: 'space', ufrag: replaceAt(typical, 12, ' '), reason: 'bad-alphabet' },
  { name: 'non-ASCII letter', ufrag: replaceAt(typical, 3, 'é'), reason: 'bad-alphabet' },
  {
    name: 'version 0, correctly tagged',
    ufrag: rawUfrag(0, 1, 1, 42, issuedAt, nonce, key1),
    reason: 'bad-version',
  },
  {
    name: 'version 2, correctly tagged',
    ufrag: rawUfrag(2, 1, 1, 42, issuedAt, nonce, key1),
    reason: 'bad-version',
  },
  {
    name: 'version 255, correctly tagged',
    ufrag: rawUfrag(255, 1, 1, 42, issuedAt, nonce, key1),
    reason: 'bad-version',
  },
  { name: 'first character changed (version bits)', ufrag: flipAt(typical, 0), reason: 'bad-version' },
  {
    name: 'key 2, not in the keyring',
    ufrag: rawUfrag(1, 2, 1, 42, issuedAt, nonce, digest('voice-edge retired key 2', 32)),
    reason: 'unknown-key',
  },
  {
    name: 'key 254, not in the keyring',
    ufrag: rawUfrag(1, 254, 1, 42, issuedAt, nonce, key1),
    reason: 'unknown-key',
  },
  { name: 'last character changed (tag)', ufrag: flipAt(typical, 39), reason: 'bad-tag' },
  { name: 'character 5 changed (cluster ID)', ufrag: flipAt(typical, 5), reason: 'bad-tag' },
  { name: 'character 10 changed (transceiver ID)', ufrag: flipAt(typical, 10), reason: 'bad-tag' },
  { name: 'character 16 changed (issued at)', ufrag: flipAt(typical, 16), reason: 'bad-tag' },
  { name: 'character 22 changed (nonce)', ufrag: flipAt(typical, 22), reason: 'bad-tag' },
  { name: 'issued one second earlier, same tag (backdated)', ufrag: retimed(-1), reason: 'bad-tag' },
  { name: 'issued one second later, same tag', ufrag: retimed(1), reason: 'bad-tag' },
  {
    name: 'key 1 id, signed with another secret',
    ufrag: rawUfrag(1, 1, 1, 42, issuedAt, nonce, digest('not the key', 32)),
    reason: 'bad-tag',
  },
  {
    name: 'key 0 fields, signed with key 1',
    ufrag: rawUfrag(1, 0, 1, 42, issuedAt, nonce, key1),
    reason: 'bad-tag',
  },
  {
    name: 'last 11 characters (55 tag bits) zero',
    ufrag: `${typical.slice(0, 29)}${'a'.repeat(11)}`,
    reason: 'bad-tag',
  },
];

// A vector that does not fail the way it claims would publish a wrong answer.
for (const vector of invalid) {
  const result = decodeUfrag(vector.ufrag, keyring);
  if (result.ok || result.reason !== vector.reason) {
    throw new Error(`invalid vector "${vector.name}" decodes as ${result.ok ? 'ok' : result.reason}`);
  }
}

const document = {
  format: 'voice-edge ufrag v1',
  comment:
    'Known-answer vectors for protocol/ufrag.ts; format described in protocol/testdata/generate-ufrag-vectors.ts',
  keys: keys.map((key) => ({ id: key.id, secret: key.secret.toString('base64') })),
  currentKeyId: keyring.current.id,
  valid,
  invalid,
};

writeFileSync(OUTPUT, `${JSON.stringify(document, null, 2)}\n`);
console.log(`wrote ${valid.length} valid and ${invalid.length} invalid vectors to ${OUTPUT.pathname}`);
