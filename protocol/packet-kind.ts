// The one classifier of what shares a WebRTC 5-tuple (RFC 7983 §7): STUN, DTLS and RTP/RTCP are
// told apart by their first byte. The relay decides by it what may create a flow, the transceiver's
// router what to verify as STUN; RTP and RTCP are told apart in rtp-header.ts.

/** Packet families sharing one 5-tuple, told apart by the first byte (RFC 7983). */
export type PacketKind = 'stun' | 'zrtp' | 'dtls' | 'turn-channel' | 'rtp' | 'unknown';

export function classifyPacket(packet: Buffer): PacketKind {
  const first = packet[0];
  if (first === undefined) return 'unknown';
  if (first < 4) return 'stun';
  if (first >= 16 && first <= 19) return 'zrtp';
  if (first >= 20 && first <= 63) return 'dtls';
  if (first >= 64 && first <= 79) return 'turn-channel';
  if (first >= 128 && first <= 191) return 'rtp';
  return 'unknown';
}
