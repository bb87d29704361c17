// Property and fuzz tests of the packet-path parsers: whatever arrives on a socket, they return a
// result and never throw, forged or damaged messages never verify, and parsing many packets
// retains no memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import type { TransportAddress } from './address.ts';
import { classifyPacket } from './packet-kind.ts';
import {
  decodeErrorCode,
  decodeXorMappedAddress,
  encodeStun,
  looksLikeStun,
  parseStun,
  readReceiverUfrag,
  readUsername,
  STUN_MAGIC_COOKIE,
  StunAttr,
  StunType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from './stun.ts';
import { decodeTunnelPacket, encodeTunnelPacket, TUNNEL_MAGIC } from './tunnel.ts';
import { decodeUfrag, encodeUfrag, type RoutingKey, RoutingKeyring, UFRAG_LENGTH } from './ufrag.ts';

const KEY: RoutingKey = { id: 7, secret: Buffer.alloc(32, 0x5c) };
const KEYRING = new RoutingKeyring([KEY, { id: 8, secret: Buffer.alloc(16, 0x11) }], 7);
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Everything the relay may call on a client packet; throws only if a parser throws. */
function exerciseClientPacket(packet: Buffer, password: string): boolean {
  classifyPacket(packet);
  const looks = looksLikeStun(packet);
  const result = parseStun(packet);
  if (!result.ok) return false;
  assert.ok(looks, 'parseStun accepted what looksLikeStun refused');
  const message = result.message;
  readUsername(message);
  readReceiverUfrag(message);
  for (const attribute of message.attributes) {
    decodeXorMappedAddress(attribute.value, message.transactionId);
    decodeErrorCode(attribute.value);
  }
  const integrity = verifyMessageIntegrity(message, password);
  const fingerprint = verifyFingerprint(message);
  return integrity && fingerprint;
}

const bytes = (maxLength = 600) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

/** A header that passes the cheap checks, so the fuzzing reaches the attribute walk. */
const stunShaped = fc
  .tuple(
    fc.integer({ min: 0, max: 0x03ff }), // first byte 0..3 (RFC 7983)
    fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.uint8Array({ maxLength: 200 }),
    fc.boolean(),
  )
  .map(([type, transactionId, body, honestLength]) => {
    const packet = Buffer.alloc(20 + body.length);
    packet.writeUInt16BE(type, 0);
    packet.writeUInt16BE(honestLength ? body.length & ~3 : body.length, 2);
    packet.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
    packet.set(transactionId, 8);
    packet.set(body, 20);
    return packet;
  });

/** Sequences of syntactically valid attributes of the kinds a Binding request carries. */
const attribute = fc.oneof(
  fc.record({ type: fc.constant(StunAttr.Username), value: bytes(64) }),
  fc.record({ type: fc.constant(StunAttr.Priority), value: fc.constant(Buffer.from('6e0001ff', 'hex')) }),
  fc.record({ type: fc.constant(StunAttr.UseCandidate), value: fc.constant(Buffer.alloc(0)) }),
  fc.record({ type: fc.constantFrom(StunAttr.IceControlled, StunAttr.IceControlling), value: bytes(8) }),
  // Any other type, except a second MESSAGE-INTEGRITY or FINGERPRINT (those make the message invalid).
  fc.record({
    type: fc
      .integer({ min: 0, max: 0xffff })
      .filter((type) => type !== StunAttr.MessageIntegrity && type !== StunAttr.Fingerprint),
    value: bytes(40),
  }),
);

/** A STUN message with MESSAGE-INTEGRITY and FINGERPRINT, and the password that signed it. */
const signedStun = fc
  .tuple(
    fc.constantFrom(StunType.BindingRequest, StunType.BindingSuccess, StunType.BindingIndication),
    fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.array(attribute, { maxLength: 6 }),
    fc.string({ minLength: 1, maxLength: 40 }),
  )
  .map(([type, transactionId, attributes, password]) => ({
    password,
    packet: encodeStun({
      type,
      transactionId: Buffer.from(transactionId),
      attributes,
      integrityKey: password,
      fingerprint: true,
    }),
  }));

const client: fc.Arbitrary<TransportAddress> = fc.oneof(
  fc
    .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 65535 }))
    .map(([b, port]): TransportAddress => ({ family: 4, address: [...b].join('.'), port })),
  fc
    .tuple(
      fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
      fc.integer({ min: 0, max: 65535 }),
    )
    .map(
      ([groups, port]): TransportAddress => ({
        family: 6,
        address: groups.map((g) => g.toString(16)).join(':'),
        port,
      }),
    ),
);
const tunnelPacket = fc.tuple(client, bytes(300)).map(([c, payload]) => encodeTunnelPacket(c, payload));

/** Damage to a valid datagram: a flipped bit, a truncation, an extension, or overwritten bytes. */
type Mutation =
  | { kind: 'flip'; bit: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'extend'; tail: Buffer }
  | { kind: 'overwrite'; at: number[]; values: number[] };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((bit) => ({ kind: 'flip' as const, bit })),
  fc.nat().map((length) => ({ kind: 'truncate' as const, length })),
  bytes(40).map((tail) => ({ kind: 'extend' as const, tail })),
  fc
    .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((pairs) => ({
      kind: 'overwrite' as const,
      at: pairs.map((p) => p[0]),
      values: pairs.map((p) => p[1]),
    })),
);

function mutate(packet: Buffer, m: Mutation): Buffer {
  switch (m.kind) {
    case 'flip': {
      const copy = Buffer.from(packet);
      const bit = m.bit % (packet.length * 8);
      copy[bit >> 3]! ^= 0x80 >> (bit & 7);
      return copy;
    }
    case 'truncate':
      return Buffer.from(packet.subarray(0, m.length % packet.length));
    case 'extend':
      return Buffer.concat([packet, m.tail]);
    case 'overwrite': {
      const copy = Buffer.from(packet);
      m.at.forEach((at, i) => {
        copy[at % copy.length] = m.values[i]!;
      });
      return copy;
    }
  }
}

describe('STUN parsers on hostile input', () => {
  it('never throw on random bytes', () => {
    fc.assert(
      fc.property(bytes(), fc.string(), (packet, password) => {
        exerciseClientPacket(packet, password);
      }),
      { numRuns: 5000 },
    );
  });

  it('never throw on random bodies behind a valid-looking header', () => {
    fc.assert(
      fc.property(stunShaped, (packet) => {
        assert.equal(looksLikeStun(packet), (packet.readUInt16BE(2) & 3) === 0);
        exerciseClientPacket(packet, 'password');
      }),
      { numRuns: 5000 },
    );
  });

  it('a signed message verifies, and no damaged copy does', () => {
    fc.assert(
      fc.property(signedStun, mutation, ({ packet, password }, m) => {
        assert.equal(exerciseClientPacket(packet, password), true, 'the original must verify');
        const damaged = mutate(packet, m);
        const verified = exerciseClientPacket(damaged, password);
        if (m.kind === 'extend') {
          // Bytes after the length in the header are not part of the message.
          assert.equal(verified, true);
          const result = parseStun(damaged);
          assert.ok(result.ok);
          assert.deepEqual(result.message.raw, packet);
        } else if (!damaged.equals(packet)) {
          assert.equal(verified, false, `${m.kind} passed verification`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('a signed message does not verify with another password', () => {
    fc.assert(
      fc.property(signedStun, fc.string({ minLength: 1 }), ({ packet, password }, other) => {
        fc.pre(other !== password);
        const result = parseStun(packet);
        assert.ok(result.ok);
        assert.equal(verifyMessageIntegrity(result.message, other), false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('tunnel decoder on hostile input', () => {
  it('never throws on random bytes, and agrees with the header it read', () => {
    const withMagic = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), bytes(60))
      .map(([versionType, family, rest]) =>
        Buffer.concat([Buffer.from([TUNNEL_MAGIC, versionType, family]), rest]),
      );
    fc.assert(
      fc.property(fc.oneof(bytes(), withMagic), (datagram) => {
        const result = decodeTunnelPacket(datagram);
        if (!result.ok) return;
        const headerLength = datagram[2] === 4 ? 10 : 22;
        assert.equal(result.packet.client.family, datagram[2]);
        assert.equal(result.packet.payload.length, datagram.length - headerLength);
        assert.equal(result.packet.client.port, datagram.readUInt16BE(4));
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on damaged valid packets', () => {
    fc.assert(
      fc.property(tunnelPacket, mutation, (datagram, m) => {
        const damaged = mutate(datagram, m);
        const result = decodeTunnelPacket(damaged);
        if (m.kind === 'truncate' && damaged.length < 10)
          assert.deepEqual(result, { ok: false, reason: 'too-short' });
        if (m.kind === 'extend') {
          assert.ok(result.ok);
          assert.equal(result.packet.payload.length, damaged.length - (datagram[2] === 4 ? 10 : 22));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ufrag decoder on hostile input', () => {
  const fieldsArb = fc.record({
    clusterId: fc.integer({ min: 0, max: 0xffff }),
    transceiverId: fc.integer({ min: 0, max: 0xffffffff }),
    issuedAt: fc.integer({ min: 0, max: 0xffffffff }),
    nonce: fc.uint8Array({ minLength: 6, maxLength: 6 }).map((a) => Buffer.from(a)),
  });

  it('never throws on random strings, and never accepts one', () => {
    const base32String = fc
      .array(fc.constantFrom(...BASE32), { minLength: UFRAG_LENGTH, maxLength: UFRAG_LENGTH })
      .map((chars) => chars.join(''));
    const anyString = fc.oneof(
      fc.string({ maxLength: UFRAG_LENGTH + 8 }),
      fc.string({ unit: 'binary', minLength: UFRAG_LENGTH, maxLength: UFRAG_LENGTH }),
      base32String,
    );
    fc.assert(
      fc.property(anyString, (text) => {
        const result = decodeUfrag(text, KEYRING);
        assert.equal(result.ok, false, text);
      }),
      { numRuns: 5000 },
    );
  });

  it('a ufrag with any one character replaced never verifies (the identity replacement does)', () => {
    fc.assert(
      fc.property(
        fieldsArb,
        fc.integer({ min: 0, max: UFRAG_LENGTH - 1 }),
        fc.constantFrom(...BASE32),
        (fields, position, char) => {
          const ufrag = encodeUfrag({ ...fields, keyId: KEY.id }, KEY);
          const mutated = ufrag.slice(0, position) + char + ufrag.slice(position + 1);
          const result = decodeUfrag(mutated, KEYRING);
          if (mutated === ufrag) {
            assert.ok(result.ok);
            assert.equal(result.fields.transceiverId, fields.transceiverId);
            assert.equal(result.fields.issuedAt, fields.issuedAt);
          } else {
            assert.equal(result.ok, false, `${ufrag} → ${mutated}`);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a ufrag with several characters replaced, or signed by another key, never verifies', () => {
    fc.assert(
      fc.property(
        fieldsArb,
        fc.array(fc.tuple(fc.integer({ min: 0, max: UFRAG_LENGTH - 1 }), fc.constantFrom(...BASE32)), {
          minLength: 2,
          maxLength: 8,
        }),
        fc.uint8Array({ minLength: 16, maxLength: 32 }),
        (fields, replacements, otherSecret) => {
          const ufrag = encodeUfrag({ ...fields, keyId: KEY.id }, KEY);
          const chars = [...ufrag];
          for (const [position, char] of replacements) chars[position] = char;
          const mutated = chars.join('');
          if (mutated !== ufrag) assert.equal(decodeUfrag(mutated, KEYRING).ok, false);
          const forged = encodeUfrag(
            { ...fields, keyId: KEY.id },
            { id: KEY.id, secret: Buffer.from(otherSecret) },
          );
          if (!Buffer.from(otherSecret).equals(KEY.secret)) {
            assert.deepEqual(decodeUfrag(forged, KEYRING), { ok: false, reason: 'bad-tag' });
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('memory', () => {
  // gc() without the command-line flag: set it now, then fetch gc from a fresh context.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const PACKETS = 200_000;
  const TOLERANCE = 4 * 1024 * 1024;

  /** A deterministic, allocation-free PRNG (xorshift32), so the loop measures only the parsers. */
  function prng(seed: number): () => number {
    let state = seed >>> 0 || 1;
    return () => {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      return state;
    };
  }

  const stunTemplate = encodeStun({
    type: StunType.BindingRequest,
    transactionId: Buffer.alloc(12, 3),
    attributes: [{ type: StunAttr.Username, value: Buffer.from('aeaqaaiaaaacuaicamcakbqirpau7qms:peer') }],
    integrityKey: 'password',
    fingerprint: true,
  });
  const tunnelTemplate = encodeTunnelPacket({ family: 6, address: '2001:db8::1', port: 4000 }, stunTemplate);

  /** Feeds `count` fresh packets (as a socket would) through every parser; `sink` sees each one. */
  function run(count: number, seed: number, sink: (packet: Buffer, ufrag: string) => void): void {
    const random = prng(seed);
    const chars: string[] = new Array(UFRAG_LENGTH);
    for (let i = 0; i < count; i++) {
      const kind = i & 3;
      let packet: Buffer;
      if (kind === 0) {
        packet = Buffer.allocUnsafe(random() % 200);
        for (let j = 0; j < packet.length; j++) packet[j] = random() & 0xff;
      } else {
        const template = kind === 3 ? tunnelTemplate : stunTemplate;
        packet = Buffer.allocUnsafe(template.length);
        template.copy(packet);
        packet[random() % packet.length] = random() & 0xff;
      }
      exerciseClientPacket(packet, 'password');
      decodeTunnelPacket(packet);
      for (let j = 0; j < UFRAG_LENGTH; j++) chars[j] = BASE32[random() & 31]!;
      const ufrag = chars.join('');
      decodeUfrag(ufrag, KEYRING);
      sink(packet, ufrag);
    }
  }

  function heapGrowth(sink: (packet: Buffer, ufrag: string) => void): number {
    run(20_000, 1, () => {}); // warm up: JIT code and lazily built tables are not leaks
    gc();
    gc();
    const before = process.memoryUsage();
    run(PACKETS, 2, sink);
    gc();
    gc();
    const after = process.memoryUsage();
    return after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  }

  it(`${PACKETS} random and damaged packets grow the heap by less than ${TOLERANCE / 2 ** 20} MB`, (t) => {
    const growth = heapGrowth(() => {});
    t.diagnostic(`heap growth ${(growth / 2 ** 20).toFixed(2)} MB`);
    assert.ok(growth < TOLERANCE, `heap grew by ${(growth / 2 ** 20).toFixed(1)} MB`);
  });

  it('the same measurement catches a leak that keeps every input', (t) => {
    const kept: Buffer[] = [];
    const growth = heapGrowth((packet) => {
      kept.push(packet);
    });
    t.diagnostic(`heap growth with the leak ${(growth / 2 ** 20).toFixed(2)} MB`);
    assert.equal(kept.length, PACKETS);
    assert.ok(growth > TOLERANCE, `a real leak grew the heap by only ${(growth / 2 ** 20).toFixed(1)} MB`);
  });
});
