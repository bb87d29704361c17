import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RtpHeader, RtpPacket } from 'werift';
import { isRtp, rtpPayloadRange } from './rtp-header.ts';

/** An RTP packet as another implementation (werift's) writes it. */
function weriftPacket(payload: Buffer, extensions: { id: number; payload: Buffer }[] = []): Buffer {
  const header = new RtpHeader({
    payloadType: 111,
    sequenceNumber: 7,
    timestamp: 960,
    ssrc: 0x5eed,
    extension: extensions.length > 0,
    extensionProfile: 0xbede,
    extensions,
  });
  return new RtpPacket(header, payload).serialize();
}

describe('rtpPayloadRange', () => {
  test('finds the payload after the fixed header, and after a header extension', () => {
    const payload = Buffer.from('opus frame bytes');
    const plain = weriftPacket(payload);
    assert.deepEqual(rtpPayloadRange(plain), { start: 12, end: plain.length });
    const extended = weriftPacket(payload, [
      { id: 1, payload: Buffer.from([0x10, 0x20, 0x30]) },
      { id: 3, payload: Buffer.from('0') },
    ]);
    const range = rtpPayloadRange(extended)!;
    assert.deepEqual(extended.subarray(range.start, range.end), payload);
    assert.deepEqual(range.start, RtpPacket.deSerialize(extended).header.payloadOffset);
  });

  test('skips CSRCs and leaves padding out', () => {
    const packet = Buffer.concat([
      Buffer.from([0x80 | 0x20 | 2, 111, 0, 1, 0, 0, 3, 0xc0, 0, 0, 0x5e, 0xed]),
      Buffer.alloc(8, 0xcc), // two CSRCs
      Buffer.from('abc'),
      Buffer.from([0, 0, 3]), // three bytes of padding, the last one counting them
    ]);
    const range = rtpPayloadRange(packet)!;
    assert.equal(packet.subarray(range.start, range.end).toString(), 'abc');
  });

  test('counts and lengths that do not fit are refused, and so is anything not RTP', () => {
    const header = [0x80, 111, 0, 1, 0, 0, 3, 0xc0, 0, 0, 0x5e, 0xed];
    assert.equal(
      rtpPayloadRange(Buffer.from([0x80 | 15, ...header.slice(1)])),
      undefined,
      '15 CSRCs in 12 bytes',
    );
    const extensionTooLong = Buffer.from([0x90, ...header.slice(1), 0xbe, 0xde, 0, 9, 1, 2, 3, 4]);
    assert.equal(rtpPayloadRange(extensionTooLong), undefined);
    assert.equal(
      rtpPayloadRange(Buffer.from([0x90, ...header.slice(1), 0xbe])),
      undefined,
      'a cut extension header',
    );
    assert.equal(rtpPayloadRange(Buffer.from([0xa0, ...header.slice(1), 1, 0])), undefined, 'padding of 0');
    assert.equal(
      rtpPayloadRange(Buffer.from([0xa0, ...header.slice(1), 1, 40])),
      undefined,
      'more padding than packet',
    );
    assert.equal(rtpPayloadRange(Buffer.from([0x80, 200, ...header.slice(2)])), undefined, 'RTCP');
    assert.equal(rtpPayloadRange(Buffer.from(header.slice(0, 11))), undefined, 'too short');
  });

  test('any bytes: a range inside the packet, or undefined, never a throw', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.integer({ min: 0, max: 255 }),
        (bytes, first) => {
          const packet = Buffer.from([first, ...bytes]);
          const range = rtpPayloadRange(packet);
          if (range === undefined) return;
          assert.ok(isRtp(packet));
          assert.ok(range.start >= 12 && range.start <= range.end && range.end <= packet.length);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
