// The clear part of an (S)RTP header that the relay and the transceiver's router read to find a
// session by its media (RFC 3550 §5.1; SRTP, RFC 3711, leaves the header unencrypted). Nothing here
// authenticates anything: the SSRC only names a candidate, which the session's SRTP key confirms.

/** Fixed RTP header length: an SSRC needs at least this much. */
export const RTP_HEADER_LENGTH = 12;

/**
 * True for an RTP packet (RFC 7983: first byte 128–191), not RTCP: on a muxed port RTCP's packet
 * types 192–223 in the second byte read as RTP payload types 64–95 with or without the marker bit,
 * which RTP must not use (RFC 5761 §4).
 */
export function isRtp(packet: Buffer): boolean {
  const first = packet[0];
  const second = packet[1];
  return (
    first !== undefined &&
    second !== undefined &&
    first >= 128 &&
    first <= 191 &&
    (second < 192 || second > 223) &&
    packet.length >= RTP_HEADER_LENGTH
  );
}

/** The SSRC of an RTP packet, or undefined for anything else (RTCP, DTLS, STUN, too short). */
export function rtpSsrc(packet: Buffer): number | undefined {
  return isRtp(packet) ? packet.readUInt32BE(8) : undefined;
}

/** The sequence number of an RTP packet (the caller checked isRtp). */
export function rtpSequenceNumber(packet: Buffer): number {
  return packet.readUInt16BE(2);
}
