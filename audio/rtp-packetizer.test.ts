import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RtpHeader, RtpPacket } from 'werift';
import { OpusRtpPacketizer, TIMESTAMP_STEP } from './rtp-packetizer.ts';

const OPUS = Buffer.from([0xf8, 0xff, 0xfe]);

describe('OpusRtpPacketizer', () => {
  test('numbers packets consecutively, 960 timestamp units (20 ms at 48 kHz) apart', () => {
    const packetizer = new OpusRtpPacketizer({ firstSequenceNumber: 100, firstTimestamp: 5000 });
    const packets = [0, 1, 2].map(() => packetizer.packetize(OPUS));
    assert.deepEqual(
      packets.map((p) => [p.sequenceNumber, p.timestamp]),
      [
        [100, 5000],
        [101, 5960],
        [102, 6920],
      ],
    );
    assert.deepEqual(packetizer.next, { sequenceNumber: 103, timestamp: 7880 });
  });

  test('sequence numbers wrap at 2^16 and timestamps at 2^32', () => {
    const packetizer = new OpusRtpPacketizer({ firstSequenceNumber: 65534, firstTimestamp: 2 ** 32 - 1000 });
    const packets = [0, 1, 2].map(() => packetizer.packetize(OPUS));
    assert.deepEqual(
      packets.map((p) => p.sequenceNumber),
      [65534, 65535, 0],
    );
    assert.deepEqual(
      packets.map((p) => p.timestamp),
      [2 ** 32 - 1000, 2 ** 32 - 40, 920],
    );
  });

  test('the marker bit flags the first packet and each talkspurt start', () => {
    const packetizer = new OpusRtpPacketizer();
    const markers = [
      packetizer.packetize(OPUS),
      packetizer.packetize(OPUS),
      packetizer.packetize(OPUS, true),
      packetizer.packetize(OPUS),
    ].map((p) => p.marker);
    assert.deepEqual(markers, [true, false, true, false]);
  });

  test('time without a packet advances the timestamp, not the sequence number, never back', () => {
    const packetizer = new OpusRtpPacketizer({ firstSequenceNumber: 7, firstTimestamp: 2 ** 32 - 960 });
    packetizer.packetize(OPUS);
    packetizer.catchUpTo(TIMESTAMP_STEP - 1);
    assert.equal(packetizer.next.timestamp, 0, 'already past: unchanged');
    packetizer.catchUpTo(3 * TIMESTAMP_STEP + 100);
    const after = packetizer.packetize(OPUS, true);
    assert.equal(after.sequenceNumber, 8);
    assert.equal(after.timestamp, 2 * TIMESTAMP_STEP + 100, 'wrapped past 2^32');
    assert.equal(after.marker, true);
    assert.equal(packetizer.packetize(OPUS).marker, false);
  });

  test('its fields make a valid werift RTP packet (what the peer sends)', () => {
    const packetizer = new OpusRtpPacketizer({ payloadType: 109, firstSequenceNumber: 65535 });
    const { payload, ...fields } = packetizer.packetize(OPUS);
    const parsed = RtpPacket.deSerialize(new RtpPacket(new RtpHeader(fields), payload).serialize());
    assert.equal(parsed.header.version, 2);
    assert.equal(parsed.header.payloadType, 109);
    assert.equal(parsed.header.sequenceNumber, 65535);
    assert.equal(parsed.header.timestamp, fields.timestamp);
    assert.equal(parsed.header.marker, true);
    assert.deepEqual(parsed.payload, OPUS);
  });

  test('starts from random sequence numbers and timestamps', () => {
    const starts = Array.from({ length: 16 }, () => new OpusRtpPacketizer().next);
    assert.ok(new Set(starts.map((s) => s.sequenceNumber)).size > 1);
    assert.ok(new Set(starts.map((s) => s.timestamp)).size > 1);
    for (const { sequenceNumber, timestamp } of starts) {
      assert.ok(Number.isInteger(sequenceNumber) && sequenceNumber >= 0 && sequenceNumber <= 0xffff);
      assert.ok(Number.isInteger(timestamp) && timestamp >= 0 && timestamp < 2 ** 32);
    }
  });
});
