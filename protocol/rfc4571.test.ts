import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameReader, frame, frameHeader, MAX_FRAME_LENGTH } from './rfc4571.ts';

describe('RFC 4571 framing', () => {
  it('prefixes a packet with its 16-bit big-endian length', () => {
    assert.equal(frame(Buffer.from('abc')).toString('hex'), '0003616263');
    assert.equal(frame(Buffer.alloc(0)).toString('hex'), '0000');
    assert.equal(frameHeader(Buffer.alloc(MAX_FRAME_LENGTH)).toString('hex'), 'ffff');
  });

  it('refuses a packet a 16-bit length cannot announce', () => {
    assert.throws(() => frame(Buffer.alloc(MAX_FRAME_LENGTH + 1)), RangeError);
  });

  it('reads packets split and joined at any byte boundary, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 1400 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 50 }),
        (packets, cuts) => {
          const stream = Buffer.concat(packets.map((p) => frame(Buffer.from(p))));
          const reader = new FrameReader();
          const out: Buffer[] = [];
          let offset = 0;
          let i = 0;
          while (offset < stream.length) {
            const size = cuts[i++ % cuts.length]!;
            out.push(...reader.push(stream.subarray(offset, offset + size)).map((b) => Buffer.from(b)));
            offset += size;
          }
          assert.deepEqual(
            out.map((b) => b.toString('hex')),
            packets.map((p) => Buffer.from(p).toString('hex')),
          );
          assert.equal(reader.buffered, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds at most one partial packet: a peer announcing 65,535 bytes and sending fewer', () => {
    const reader = new FrameReader();
    assert.deepEqual(reader.push(Buffer.from([0xff, 0xff])), []);
    for (let i = 0; i < 100; i++) assert.deepEqual(reader.push(Buffer.alloc(600)), []);
    assert.equal(reader.buffered, 2 + 60_000);
    const packets = reader.push(Buffer.alloc(MAX_FRAME_LENGTH - 60_000 + 5, 1));
    assert.equal(packets.length, 1);
    assert.equal(packets[0]!.length, MAX_FRAME_LENGTH);
    assert.equal(reader.buffered, 5);
  });

  it('reads an empty packet (length 0)', () => {
    const reader = new FrameReader();
    const packets = reader.push(Buffer.from('0000000178', 'hex'));
    assert.deepEqual(
      packets.map((p) => p.toString('hex')),
      ['', '78'],
    );
  });
});

describe('FrameReader under a trickling peer', () => {
  it('a packet sent one byte at a time comes out whole, once', () => {
    const packet = Buffer.alloc(1200, 7);
    const stream = frame(packet);
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (const byte of stream) out.push(...reader.push(Buffer.from([byte])));
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], packet);
    assert.equal(reader.buffered, 0);
  });
});

describe('FrameReader with a packet length limit', () => {
  it('stops at a longer announced packet, keeping the packets before it and holding nothing', () => {
    const reader = new FrameReader(1500);
    const packets = reader.push(
      Buffer.concat([frame(Buffer.alloc(1500, 1)), Buffer.from([0x05, 0xdd, 9, 9])]),
    );
    assert.equal(packets.length, 1);
    assert.equal(reader.tooLarge, true);
    assert.equal(reader.buffered, 0);
    assert.deepEqual(reader.push(frame(Buffer.from('x'))), []);
  });
});
