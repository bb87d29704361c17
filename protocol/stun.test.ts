import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  decodeErrorCode,
  decodeXorMappedAddress,
  encodeErrorCode,
  encodeStun,
  encodeXorMappedAddress,
  findAttribute,
  looksLikeStun,
  parseStun,
  readReceiverUfrag,
  readUsername,
  STUN_HEADER_LENGTH,
  STUN_MAGIC_COOKIE,
  StunAttr,
  type StunMessage,
  StunType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from './stun.ts';

// RFC 5769 test vectors (§2.1 sample request, §2.2 IPv4 response, §2.3 IPv6 response).
const RFC5769_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
const RFC5769_TRANSACTION_ID = 'b7e7a701bc34d686fa87dfae';
const RFC5769_REQUEST = Buffer.from(
  '000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74' +
    '002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020' +
    '000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf',
  'hex',
);
const RFC5769_IPV4_RESPONSE = Buffer.from(
  '0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220' +
    '002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7' +
    '80280004c07d4c96',
  'hex',
);
const RFC5769_IPV6_RESPONSE = Buffer.from(
  '010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220' +
    '002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9' +
    '00080014a382954e4be67bf11784c97c8292c275bfe3ed41' +
    '80280004c8fb0b4c',
  'hex',
);
const RFC5769_VECTORS = [
  ['sample request', RFC5769_REQUEST],
  ['IPv4 response', RFC5769_IPV4_RESPONSE],
  ['IPv6 response', RFC5769_IPV6_RESPONSE],
] as const;

function parsed(packet: Buffer): StunMessage {
  const result = parseStun(packet);
  assert.ok(result.ok, `parse failed: ${result.ok ? '' : result.reason}`);
  return result.message;
}

const txid = (fill: number) => Buffer.alloc(12, fill);

/** A hand-built message: header with the given body length, then `body`. */
function rawMessage(type: number, body: Buffer, lengthField = body.length): Buffer {
  const header = Buffer.alloc(STUN_HEADER_LENGTH);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(lengthField, 2);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  txid(0xab).copy(header, 8);
  return Buffer.concat([header, body]);
}

function rawAttribute(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + ((value.length + 3) & ~3));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function flipBit(packet: Buffer, bit: number): Buffer {
  const copy = Buffer.from(packet);
  copy[bit >> 3]! ^= 0x80 >> (bit & 7);
  return copy;
}

describe('RFC 5769 test vectors', () => {
  it('§2.1 sample request: attributes, USERNAME, MESSAGE-INTEGRITY and FINGERPRINT', () => {
    const message = parsed(RFC5769_REQUEST);
    assert.equal(message.type, StunType.BindingRequest);
    assert.equal(message.transactionId.toString('hex'), RFC5769_TRANSACTION_ID);
    assert.deepEqual(
      message.attributes.map((a) => [a.type, a.offset, a.value.length]),
      [
        [StunAttr.Software, 20, 16],
        [StunAttr.Priority, 40, 4],
        [StunAttr.IceControlled, 48, 8],
        [StunAttr.Username, 60, 9],
        [StunAttr.MessageIntegrity, 76, 20],
        [StunAttr.Fingerprint, 100, 4],
      ],
    );
    assert.equal(findAttribute(message, StunAttr.Software)?.value.toString(), 'STUN test client');
    assert.equal(findAttribute(message, StunAttr.Priority)?.value.readUInt32BE(0), 0x6e0001ff);
    assert.equal(readUsername(message), 'evtj:h6vY');
    assert.equal(readReceiverUfrag(message), 'evtj');
    assert.equal(verifyMessageIntegrity(message, RFC5769_PASSWORD), true);
    assert.equal(verifyMessageIntegrity(message, Buffer.from(RFC5769_PASSWORD)), true);
    assert.equal(verifyFingerprint(message), true);
    assert.equal(message.raw.length, RFC5769_REQUEST.length);
  });

  it('§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
    const message = parsed(RFC5769_IPV4_RESPONSE);
    assert.equal(message.type, StunType.BindingSuccess);
    assert.equal(findAttribute(message, StunAttr.Software)?.value.toString(), 'test vector');
    const xma = findAttribute(message, StunAttr.XorMappedAddress);
    assert.ok(xma);
    assert.deepEqual(decodeXorMappedAddress(xma.value, message.transactionId), {
      family: 4,
      address: '192.0.2.1',
      port: 32853,
    });
    assert.deepEqual(
      encodeXorMappedAddress({ family: 4, address: '192.0.2.1', port: 32853 }, message.transactionId),
      xma.value,
    );
    assert.equal(verifyMessageIntegrity(message, RFC5769_PASSWORD), true);
    assert.equal(verifyFingerprint(message), true);
  });

  it('§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    const message = parsed(RFC5769_IPV6_RESPONSE);
    assert.equal(message.type, StunType.BindingSuccess);
    const xma = findAttribute(message, StunAttr.XorMappedAddress);
    assert.ok(xma);
    const mapped = { family: 6, address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } as const;
    assert.deepEqual(decodeXorMappedAddress(xma.value, message.transactionId), mapped);
    assert.deepEqual(encodeXorMappedAddress(mapped, message.transactionId), xma.value);
    assert.equal(verifyMessageIntegrity(message, RFC5769_PASSWORD), true);
    assert.equal(verifyFingerprint(message), true);
  });

  for (const [name, vector] of RFC5769_VECTORS) {
    it(`${name}: a wrong password fails MESSAGE-INTEGRITY`, () => {
      const message = parsed(vector);
      assert.equal(verifyMessageIntegrity(message, 'VOkJxbRl1RmTxUk/WvJxBT'), false);
      assert.equal(verifyMessageIntegrity(message, ''), false);
      assert.equal(verifyMessageIntegrity(message, `${RFC5769_PASSWORD}x`), false);
    });

    it(`${name}: every single flipped bit is rejected`, () => {
      const integrity = findAttribute(parsed(vector), StunAttr.MessageIntegrity)!;
      const integrityEnd = (integrity.offset + 24) * 8;
      let rejectedByParse = 0;
      let lengthOnly = 0;
      for (let bit = 0; bit < vector.length * 8; bit++) {
        const result = parseStun(flipBit(vector, bit));
        if (!result.ok) {
          rejectedByParse++;
          continue;
        }
        assert.equal(verifyFingerprint(result.message), false, `bit ${bit} passes FINGERPRINT`);
        // MESSAGE-INTEGRITY covers everything up to its own end; FINGERPRINT comes after it. The one
        // field it cannot cover is the header's length (the HMAC replaces it, RFC 8489 §14.5): a
        // flip there that ends the message right after MESSAGE-INTEGRITY leaves authentic content
        // without FINGERPRINT, which verifyFingerprint rejected above.
        if (bit < integrityEnd && verifyMessageIntegrity(result.message, RFC5769_PASSWORD)) {
          assert.ok(bit >= 16 && bit < 32, `bit ${bit} passes MESSAGE-INTEGRITY`);
          assert.equal(result.message.raw.length, integrityEnd / 8, `bit ${bit}`);
          lengthOnly++;
        }
      }
      // The checks above must mostly be reached, not skipped because parsing failed.
      assert.ok(rejectedByParse < vector.length * 2, `${rejectedByParse} flips failed to parse`);
      assert.ok(lengthOnly <= 1, `${lengthOnly} length flips kept MESSAGE-INTEGRITY valid`);
    });
  }

  it('MESSAGE-INTEGRITY and FINGERPRINT match an independent computation on the vector', () => {
    // RFC 8489 §14.5: HMAC over the message up to MESSAGE-INTEGRITY, with the length field set
    // as if MESSAGE-INTEGRITY were the last attribute. §14.7: CRC-32 XOR 0x5354554e.
    const withAdjustedLength = Buffer.from(RFC5769_REQUEST.subarray(0, 76));
    withAdjustedLength.writeUInt16BE(76 + 24 - 20, 2);
    const hmac = createHmac('sha1', RFC5769_PASSWORD).update(withAdjustedLength).digest();
    assert.deepEqual(hmac, RFC5769_REQUEST.subarray(80, 100));
    const fingerprint = (crc32(RFC5769_REQUEST.subarray(0, 100)) ^ 0x5354554e) >>> 0;
    assert.equal(fingerprint, RFC5769_REQUEST.readUInt32BE(104));
    assert.equal(crc32('123456789'), 0xcbf43926);
  });
});

describe('looksLikeStun', () => {
  it('accepts the RFC 5769 vectors and an encoded message', () => {
    for (const [, vector] of RFC5769_VECTORS) assert.equal(looksLikeStun(vector), true);
    assert.equal(looksLikeStun(encodeStun({ type: StunType.BindingRequest, transactionId: txid(1) })), true);
  });

  it('rejects what is not STUN', () => {
    assert.equal(looksLikeStun(Buffer.alloc(0)), false);
    assert.equal(looksLikeStun(RFC5769_REQUEST.subarray(0, 19)), false);
    for (const first of [4, 0x14, 0x16, 0x40, 0x80, 0xe7, 0xff]) {
      const copy = Buffer.from(RFC5769_REQUEST);
      copy[0] = first;
      assert.equal(looksLikeStun(copy), false, `first byte ${first}`);
    }
    const badCookie = Buffer.from(RFC5769_REQUEST);
    badCookie[7]! ^= 1;
    assert.equal(looksLikeStun(badCookie), false);
    const oddLength = Buffer.from(RFC5769_REQUEST);
    oddLength.writeUInt16BE(0x57, 2);
    assert.equal(looksLikeStun(oddLength), false);
  });

  it('accepts first bytes 0..3 and a 20-byte header (the cheap check does not read the body)', () => {
    for (const first of [0, 1, 2, 3]) {
      const copy = Buffer.from(RFC5769_REQUEST);
      copy[0] = first;
      assert.equal(looksLikeStun(copy), true);
    }
    const headerOnly = rawMessage(StunType.BindingRequest, Buffer.alloc(0), 100);
    assert.equal(looksLikeStun(headerOnly), true);
    assert.deepEqual(parseStun(headerOnly), { ok: false, reason: 'bad-length' });
  });
});

describe('parseStun', () => {
  it('parses a header-only message', () => {
    const message = parsed(rawMessage(StunType.BindingIndication, Buffer.alloc(0)));
    assert.equal(message.type, StunType.BindingIndication);
    assert.equal(message.attributes.length, 0);
    assert.equal(message.raw.length, 20);
    assert.equal(message.transactionId.toString('hex'), 'ab'.repeat(12));
  });

  it('returns views of the input, trimmed to the length in the header', () => {
    const packet = Buffer.concat([RFC5769_REQUEST, Buffer.from('trailing garbage')]);
    const message = parsed(packet);
    assert.equal(message.raw.length, RFC5769_REQUEST.length);
    assert.equal(message.raw.buffer, packet.buffer);
    assert.equal(message.raw.byteOffset, packet.byteOffset);
    assert.equal(message.attributes[0]!.value.buffer, packet.buffer);
    assert.equal(verifyFingerprint(message), true);
    assert.equal(verifyMessageIntegrity(message, RFC5769_PASSWORD), true);
  });

  it('handles padding and empty attributes', () => {
    const body = Buffer.concat([
      rawAttribute(0x0006, Buffer.from('a')),
      rawAttribute(0x0025, Buffer.alloc(0)),
      rawAttribute(0x8022, Buffer.from('abcd')),
      rawAttribute(0x8023, Buffer.from('abcde')),
    ]);
    const message = parsed(rawMessage(StunType.BindingRequest, body));
    assert.deepEqual(
      message.attributes.map((a) => [a.type, a.offset, a.value.toString()]),
      [
        [0x0006, 20, 'a'],
        [0x0025, 28, ''],
        [0x8022, 32, 'abcd'],
        [0x8023, 40, 'abcde'],
      ],
    );
  });

  const cases: [string, Buffer, string][] = [
    ['empty', Buffer.alloc(0), 'too-short'],
    ['19 bytes', RFC5769_REQUEST.subarray(0, 19), 'too-short'],
    ['first byte 4', Buffer.concat([Buffer.from([4]), RFC5769_REQUEST.subarray(1)]), 'not-stun'],
    ['first byte 0x16 (DTLS)', Buffer.concat([Buffer.from([0x16]), RFC5769_REQUEST.subarray(1)]), 'not-stun'],
    ['first byte 0x80 (RTP)', Buffer.concat([Buffer.from([0x80]), RFC5769_REQUEST.subarray(1)]), 'not-stun'],
    [
      'classic STUN (RFC 3489) without the cookie',
      rawMessage(1, Buffer.alloc(0)).fill(0, 4, 8),
      'bad-cookie',
    ],
    ['length not a multiple of 4', rawMessage(1, Buffer.alloc(4), 2), 'bad-length'],
    ['length past the end', rawMessage(1, Buffer.alloc(4), 8), 'bad-length'],
    ['truncated vector', RFC5769_REQUEST.subarray(0, RFC5769_REQUEST.length - 1), 'bad-length'],
    [
      'attribute longer than the message',
      rawMessage(1, Buffer.from([0x00, 0x06, 0x00, 0x05, 0x61, 0x61, 0x61, 0x61])),
      'bad-attribute',
    ],
    [
      'attribute length 0xffff',
      rawMessage(1, Buffer.from([0x00, 0x06, 0xff, 0xff, 0x61, 0x61, 0x61, 0x61])),
      'bad-attribute',
    ],
    [
      '33 attributes',
      rawMessage(1, Buffer.concat(Array.from({ length: 33 }, () => rawAttribute(0x8022, Buffer.alloc(0))))),
      'too-many-attributes',
    ],
  ];
  for (const [name, packet, reason] of cases) {
    it(`${name} → ${reason}`, () => assert.deepEqual(parseStun(packet), { ok: false, reason }));
  }

  it('accepts exactly 32 attributes', () => {
    const body = Buffer.concat(
      Array.from({ length: 32 }, (_, i) => rawAttribute(0x8000 + i, Buffer.alloc(0))),
    );
    assert.equal(parsed(rawMessage(1, body)).attributes.length, 32);
  });
});

describe('findAttribute', () => {
  it('returns the first attribute of the type, or undefined', () => {
    const body = Buffer.concat([
      rawAttribute(0x8022, Buffer.from('one')),
      rawAttribute(0x8022, Buffer.from('two')),
    ]);
    const message = parsed(rawMessage(1, body));
    assert.equal(findAttribute(message, 0x8022)?.value.toString(), 'one');
    assert.equal(findAttribute(message, 0x8022)?.offset, 20);
    assert.equal(findAttribute(message, StunAttr.Username), undefined);
  });
});

describe('readUsername and readReceiverUfrag', () => {
  const withUsername = (value: Buffer) =>
    parsed(encodeStun({ type: 1, transactionId: txid(2), attributes: [{ type: StunAttr.Username, value }] }));

  it('reads printable ASCII', () => {
    assert.equal(readUsername(withUsername(Buffer.from('server:client'))), 'server:client');
    assert.equal(readUsername(withUsername(Buffer.from('!~'))), '!~');
    assert.equal(readUsername(withUsername(Buffer.alloc(513, 0x61))), 'a'.repeat(513));
  });

  it('refuses empty, too long, control, space and non-ASCII values, and a missing attribute', () => {
    assert.equal(readUsername(parsed(encodeStun({ type: 1, transactionId: txid(2) }))), undefined);
    assert.equal(readUsername(withUsername(Buffer.alloc(0))), undefined);
    assert.equal(readUsername(withUsername(Buffer.alloc(514, 0x61))), undefined);
    assert.equal(readUsername(withUsername(Buffer.from('a b'))), undefined);
    assert.equal(readUsername(withUsername(Buffer.from('a\tb'))), undefined);
    assert.equal(readUsername(withUsername(Buffer.from([0x61, 0x7f]))), undefined);
    assert.equal(readUsername(withUsername(Buffer.from('é:x', 'utf8'))), undefined);
  });

  it('takes the receiver ufrag before the first colon', () => {
    assert.equal(readReceiverUfrag(withUsername(Buffer.from('srv:cli'))), 'srv');
    assert.equal(readReceiverUfrag(withUsername(Buffer.from('a:b:c'))), 'a');
    assert.equal(readReceiverUfrag(withUsername(Buffer.from('a:'))), 'a');
    assert.equal(readReceiverUfrag(withUsername(Buffer.from(':cli'))), undefined);
    assert.equal(readReceiverUfrag(withUsername(Buffer.from('nocolon'))), undefined);
    assert.equal(readReceiverUfrag(withUsername(Buffer.from('a b:c'))), undefined);
    assert.equal(readReceiverUfrag(parsed(encodeStun({ type: 1, transactionId: txid(2) }))), undefined);
  });
});

describe('verifyMessageIntegrity', () => {
  const username = { type: StunAttr.Username, value: Buffer.from('ufrag:peer') };

  it('is false without MESSAGE-INTEGRITY or with one of the wrong size', () => {
    const plain = parsed(encodeStun({ type: 1, transactionId: txid(3), attributes: [username] }));
    assert.equal(verifyMessageIntegrity(plain, 'pw'), false);
    for (const size of [0, 19, 21, 32]) {
      const odd = parsed(
        encodeStun({
          type: 1,
          transactionId: txid(3),
          attributes: [username, { type: StunAttr.MessageIntegrity, value: Buffer.alloc(size) }],
        }),
      );
      assert.equal(verifyMessageIntegrity(odd, 'pw'), false, `size ${size}`);
    }
  });

  it('ignores attributes after MESSAGE-INTEGRITY (RFC 8489 §14.5) but not changes before it', () => {
    const message = encodeStun({
      type: 1,
      transactionId: txid(3),
      attributes: [username],
      integrityKey: 'pw',
    });
    const extra = rawAttribute(0x8022, Buffer.from('added later'));
    const extended = Buffer.concat([message, extra]);
    extended.writeUInt16BE(extended.length - STUN_HEADER_LENGTH, 2);
    const result = parsed(extended);
    assert.equal(result.attributes.length, 3);
    assert.equal(verifyMessageIntegrity(result, 'pw'), true);
    assert.equal(verifyFingerprint(result), false);

    const prepended = rawMessage(
      1,
      Buffer.concat([extra, message.subarray(STUN_HEADER_LENGTH)]),
      message.length - STUN_HEADER_LENGTH + extra.length,
    );
    assert.equal(verifyMessageIntegrity(parsed(prepended), 'pw'), false);
  });

  it('uses the first MESSAGE-INTEGRITY', () => {
    const message = encodeStun({
      type: 1,
      transactionId: txid(3),
      attributes: [username],
      integrityKey: 'pw',
    });
    const second = rawAttribute(StunAttr.MessageIntegrity, Buffer.alloc(20));
    const doubled = Buffer.concat([message, second]);
    doubled.writeUInt16BE(doubled.length - STUN_HEADER_LENGTH, 2);
    assert.equal(verifyMessageIntegrity(parsed(doubled), 'pw'), true);
  });
});

describe('verifyFingerprint', () => {
  it('is false without FINGERPRINT, when it is not last, or has the wrong size', () => {
    assert.equal(verifyFingerprint(parsed(encodeStun({ type: 1, transactionId: txid(4) }))), false);
    const message = encodeStun({ type: 1, transactionId: txid(4), fingerprint: true });
    assert.equal(verifyFingerprint(parsed(message)), true);
    const after = Buffer.concat([message, rawAttribute(0x8022, Buffer.from('x'))]);
    after.writeUInt16BE(after.length - STUN_HEADER_LENGTH, 2);
    assert.equal(verifyFingerprint(parsed(after)), false);
    const wide = parsed(
      encodeStun({
        type: 1,
        transactionId: txid(4),
        attributes: [{ type: StunAttr.Fingerprint, value: Buffer.alloc(8) }],
      }),
    );
    assert.equal(verifyFingerprint(wide), false);
  });
});

describe('encodeStun', () => {
  it('writes the header and zero-padded attributes', () => {
    const message = encodeStun({
      type: StunType.BindingSuccess,
      transactionId: Buffer.from('000102030405060708090a0b', 'hex'),
      attributes: [
        { type: 0x8022, value: Buffer.from('abcde') },
        { type: 0x0025, value: Buffer.alloc(0) },
      ],
    });
    assert.equal(
      message.toString('hex'),
      '0101' +
        '0010' +
        '2112a442' +
        '000102030405060708090a0b' +
        '80220005' +
        '6162636465000000' +
        '00250000',
    );
  });

  it('writes an empty message as a bare header', () => {
    assert.equal(
      encodeStun({ type: StunType.BindingIndication, transactionId: txid(0) }).toString('hex'),
      `001100002112a442${'00'.repeat(12)}`,
    );
  });

  it('rejects a transaction ID that is not 12 bytes', () => {
    for (const size of [0, 11, 13]) {
      assert.throws(() => encodeStun({ type: 1, transactionId: Buffer.alloc(size) }), /12 bytes/);
    }
  });

  for (const [integrityKey, fingerprint] of [
    [undefined, false],
    ['pw', false],
    [undefined, true],
    ['pw', true],
    [Buffer.from([0, 1, 2, 255]), true],
  ] as const) {
    it(`integrity ${integrityKey === undefined ? 'off' : 'on'}, fingerprint ${fingerprint ? 'on' : 'off'}`, () => {
      const attributes = [{ type: StunAttr.Username, value: Buffer.from('abc:def') }];
      const message = encodeStun({ type: 1, transactionId: txid(5), attributes, integrityKey, fingerprint });
      const expectedLength = 20 + 12 + (integrityKey === undefined ? 0 : 24) + (fingerprint ? 8 : 0);
      assert.equal(message.length, expectedLength);
      assert.equal(message.readUInt16BE(2), expectedLength - 20);
      const result = parsed(message);
      assert.deepEqual(
        result.attributes.map((a) => a.type),
        [
          StunAttr.Username,
          ...(integrityKey === undefined ? [] : [StunAttr.MessageIntegrity]),
          ...(fingerprint ? [StunAttr.Fingerprint] : []),
        ],
      );
      assert.equal(verifyMessageIntegrity(result, integrityKey ?? 'pw'), integrityKey !== undefined);
      assert.equal(verifyFingerprint(result), fingerprint);
      if (integrityKey !== undefined) {
        // Independent HMAC: header with the length through MESSAGE-INTEGRITY, body before it.
        const prefix = Buffer.from(message.subarray(0, 32));
        prefix.writeUInt16BE(12 + 24, 2);
        assert.deepEqual(createHmac('sha1', integrityKey).update(prefix).digest(), message.subarray(36, 56));
      }
      if (fingerprint) {
        const end = message.length - 8;
        assert.equal(message.readUInt32BE(end + 4), (crc32(message.subarray(0, end)) ^ 0x5354554e) >>> 0);
      }
    });
  }
});

describe('XOR-MAPPED-ADDRESS', () => {
  const transactionId = Buffer.from(RFC5769_TRANSACTION_ID, 'hex');
  for (const mapped of [
    { family: 4, address: '0.0.0.0', port: 0 },
    { family: 4, address: '255.255.255.255', port: 65535 },
    { family: 4, address: '203.0.113.7', port: 3478 },
    { family: 6, address: '::', port: 0 },
    { family: 6, address: '::1', port: 65535 },
    { family: 6, address: 'fe80::1', port: 1 },
    { family: 6, address: '1:2:3:4:5:6:7:8', port: 443 },
    { family: 6, address: '::ffff:192.0.2.1', port: 9 },
  ] as const) {
    it(`round-trips ${mapped.address} port ${mapped.port}`, () => {
      const value = encodeXorMappedAddress(mapped, transactionId);
      assert.equal(value.length, mapped.family === 4 ? 8 : 20);
      assert.equal(value[0], 0);
      assert.equal(value[1], mapped.family === 4 ? 1 : 2);
      assert.equal(value.readUInt16BE(2), mapped.port ^ 0x2112);
      assert.deepEqual(decodeXorMappedAddress(value, transactionId), mapped);
    });
  }

  it('xors IPv4 with the cookie only and IPv6 with cookie and transaction ID', () => {
    const v4 = encodeXorMappedAddress({ family: 4, address: '0.0.0.0', port: 0 }, transactionId);
    assert.equal(v4.subarray(4).toString('hex'), '2112a442');
    const v6 = encodeXorMappedAddress({ family: 6, address: '::', port: 0 }, transactionId);
    assert.equal(v6.subarray(4).toString('hex'), `2112a442${RFC5769_TRANSACTION_ID}`);
  });

  it('refuses unknown families and wrong lengths', () => {
    const v4 = encodeXorMappedAddress({ family: 4, address: '1.2.3.4', port: 5 }, transactionId);
    const v6 = encodeXorMappedAddress({ family: 6, address: '::1', port: 5 }, transactionId);
    assert.equal(decodeXorMappedAddress(Buffer.alloc(0), transactionId), undefined);
    assert.equal(decodeXorMappedAddress(v4.subarray(0, 7), transactionId), undefined);
    assert.equal(decodeXorMappedAddress(Buffer.concat([v4, Buffer.alloc(1)]), transactionId), undefined);
    assert.equal(decodeXorMappedAddress(v6.subarray(0, 19), transactionId), undefined);
    for (const family of [0, 3, 4, 6]) {
      const copy = Buffer.from(v4);
      copy[1] = family;
      assert.equal(decodeXorMappedAddress(copy, transactionId), undefined, `family code ${family}`);
    }
    const v4AsV6 = Buffer.from(v6);
    v4AsV6[1] = 1;
    assert.equal(decodeXorMappedAddress(v4AsV6, transactionId), undefined);
  });

  it('throws on an address that is not an IP literal of its family', () => {
    assert.throws(
      () => encodeXorMappedAddress({ family: 4, address: '::1', port: 1 }, transactionId),
      RangeError,
    );
    assert.throws(
      () => encodeXorMappedAddress({ family: 6, address: 'host', port: 1 }, transactionId),
      RangeError,
    );
  });
});

describe('ERROR-CODE', () => {
  it('encodes class and number (RFC 8489 §14.8)', () => {
    assert.equal(
      encodeErrorCode(401, 'Unauthorized').toString('hex'),
      `00000401${Buffer.from('Unauthorized').toString('hex')}`,
    );
    assert.equal(encodeErrorCode(300, '').toString('hex'), '00000300');
    assert.equal(encodeErrorCode(699, 'x').toString('hex'), '0000066378');
    assert.equal(encodeErrorCode(487, 'Role Conflict').toString('hex').slice(0, 8), '00000457');
  });

  it('rejects codes outside 300..699', () => {
    for (const code of [0, 299, 700, 401.5, Number.NaN, -401]) {
      assert.throws(() => encodeErrorCode(code, 'x'), RangeError, String(code));
    }
  });

  it('round-trips, including UTF-8 reasons', () => {
    for (const [code, reason] of [
      [300, 'Try Alternate'],
      [400, 'Bad Request'],
      [420, ''],
      [500, 'Server Error'],
      [699, 'désolé'],
    ] as const) {
      assert.deepEqual(decodeErrorCode(encodeErrorCode(code, reason)), { code, reason });
    }
  });

  it('refuses short values, bad classes and numbers over 99; ignores the reserved bits', () => {
    assert.equal(decodeErrorCode(Buffer.from('000004', 'hex')), undefined);
    assert.equal(decodeErrorCode(Buffer.from('00000201', 'hex')), undefined);
    assert.equal(decodeErrorCode(Buffer.from('00000701', 'hex')), undefined);
    assert.equal(decodeErrorCode(Buffer.from('00000464', 'hex')), undefined);
    assert.deepEqual(decodeErrorCode(Buffer.from('fffffc01', 'hex')), { code: 401, reason: '' });
  });
});
