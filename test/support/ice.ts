// ICE connectivity checks as a browser sends them to an ICE-lite server.
import { randomBytes } from 'node:crypto';
import { encodeStun, StunAttr, StunType } from '../../protocol/stun.ts';

export function bindingRequest(serverUfrag: string, password: string, clientUfrag = 'cli1'): Buffer {
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e7f1eff);
  return encodeStun({
    type: StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes: [
      { type: StunAttr.Username, value: Buffer.from(`${serverUfrag}:${clientUfrag}`) },
      { type: StunAttr.Priority, value: priority },
      { type: StunAttr.IceControlling, value: randomBytes(8) },
      { type: StunAttr.UseCandidate, value: Buffer.alloc(0) },
    ],
    integrityKey: password,
    fingerprint: true,
  });
}

export function bindingIndication(serverUfrag: string, password: string): Buffer {
  return encodeStun({
    type: StunType.BindingIndication,
    transactionId: randomBytes(12),
    attributes: [{ type: StunAttr.Username, value: Buffer.from(`${serverUfrag}:cli1`) }],
    integrityKey: password,
    fingerprint: true,
  });
}

/** A DTLS-looking record (content type 22 = handshake) and an RTP-looking packet (version 2). */
export function dtlsPacket(size = 120): Buffer {
  const packet = randomBytes(size);
  packet[0] = 22;
  return packet;
}

/**
 * An RTP packet (Opus, payload type 111) of `size` bytes: random but for the first two bytes, and the
 * sequence number and SSRC when given (a session is found by its SSRC: NAT rebinding).
 */
export function rtpPacket(size = 172, fields: { ssrc?: number; seq?: number } = {}): Buffer {
  const packet = randomBytes(size);
  packet[0] = 0x80;
  packet[1] = 111;
  if (fields.seq !== undefined) packet.writeUInt16BE(fields.seq, 2);
  if (fields.ssrc !== undefined) packet.writeUInt32BE(fields.ssrc, 8);
  return packet;
}
