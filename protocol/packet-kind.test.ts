import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyPacket, type PacketKind } from './packet-kind.ts';

describe('classifyPacket (RFC 7983)', () => {
  const expected = (first: number): PacketKind => {
    if (first <= 3) return 'stun';
    if (first >= 16 && first <= 19) return 'zrtp';
    if (first >= 20 && first <= 63) return 'dtls';
    if (first >= 64 && first <= 79) return 'turn-channel';
    if (first >= 128 && first <= 191) return 'rtp';
    return 'unknown';
  };

  it('classifies every first byte', () => {
    for (let first = 0; first < 256; first++) {
      assert.equal(classifyPacket(Buffer.from([first, 0xff])), expected(first), `first byte ${first}`);
    }
  });

  it('checks the boundaries explicitly', () => {
    const kinds = [0, 3, 4, 15, 16, 19, 20, 63, 64, 79, 80, 127, 128, 191, 192, 255].map((b) =>
      classifyPacket(Buffer.from([b])),
    );
    assert.deepEqual(kinds, [
      'stun',
      'stun',
      'unknown',
      'unknown',
      'zrtp',
      'zrtp',
      'dtls',
      'dtls',
      'turn-channel',
      'turn-channel',
      'unknown',
      'unknown',
      'rtp',
      'rtp',
      'unknown',
      'unknown',
    ]);
  });

  it('calls an empty packet unknown and reads only the first byte', () => {
    assert.equal(classifyPacket(Buffer.alloc(0)), 'unknown');
    assert.equal(classifyPacket(Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42])), 'stun');
    assert.equal(classifyPacket(Buffer.from([0x16, 0xfe, 0xfd])), 'dtls');
  });
});
