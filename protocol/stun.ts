// STUN (RFC 8489) reading and writing: only what the relay and the transceiver need.
// Pure functions over Buffers; every read is bounds-checked so any byte string is safe input.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { type AddressFamily, bytesToIp, ipToBytes, type TransportAddress } from './address.ts';

export const STUN_HEADER_LENGTH = 20;
export const STUN_MAGIC_COOKIE = 0x2112a442;
const FINGERPRINT_XOR = 0x5354554e;
const MESSAGE_INTEGRITY_LENGTH = 20;
/** A STUN message never needs more attributes than this; more is treated as hostile. */
const MAX_ATTRIBUTES = 32;

export const StunType = {
  BindingRequest: 0x0001,
  BindingIndication: 0x0011,
  BindingSuccess: 0x0101,
  BindingError: 0x0111,
} as const;

export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  XorMappedAddress: 0x0020,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  Software: 0x8022,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
} as const;

export interface StunAttribute {
  readonly type: number;
  /** Offset of the attribute header (type) inside the message. */
  readonly offset: number;
  /** The value, a view into the message (no copy). */
  readonly value: Buffer;
}

export interface StunMessage {
  readonly type: number;
  readonly transactionId: Buffer;
  readonly attributes: readonly StunAttribute[];
  /** The whole message, a view of the input trimmed to the header's length. */
  readonly raw: Buffer;
}

export type StunParseError =
  | 'too-short'
  | 'not-stun'
  | 'bad-cookie'
  | 'bad-length'
  | 'bad-attribute'
  | 'too-many-attributes';

export type StunParseResult = { ok: true; message: StunMessage } | { ok: false; reason: StunParseError };

/** Cheap check used before a full parse: STUN first byte (RFC 7983), size and magic cookie. */
export function looksLikeStun(packet: Buffer): boolean {
  return (
    packet.length >= STUN_HEADER_LENGTH &&
    packet[0]! < 4 &&
    packet.readUInt32BE(4) === STUN_MAGIC_COOKIE &&
    (packet.readUInt16BE(2) & 3) === 0
  );
}

export function parseStun(packet: Buffer): StunParseResult {
  if (packet.length < STUN_HEADER_LENGTH) return { ok: false, reason: 'too-short' };
  if (packet[0]! >= 4) return { ok: false, reason: 'not-stun' };
  if (packet.readUInt32BE(4) !== STUN_MAGIC_COOKIE) return { ok: false, reason: 'bad-cookie' };
  const bodyLength = packet.readUInt16BE(2);
  if ((bodyLength & 3) !== 0 || STUN_HEADER_LENGTH + bodyLength > packet.length) {
    return { ok: false, reason: 'bad-length' };
  }
  const end = STUN_HEADER_LENGTH + bodyLength;
  const raw = packet.subarray(0, end);
  const attributes: StunAttribute[] = [];
  let offset = STUN_HEADER_LENGTH;
  while (offset < end) {
    if (offset + 4 > end) return { ok: false, reason: 'bad-attribute' };
    const type = raw.readUInt16BE(offset);
    const length = raw.readUInt16BE(offset + 2);
    const valueStart = offset + 4;
    if (valueStart + length > end) return { ok: false, reason: 'bad-attribute' };
    if (attributes.length === MAX_ATTRIBUTES) return { ok: false, reason: 'too-many-attributes' };
    attributes.push({ type, offset, value: raw.subarray(valueStart, valueStart + length) });
    offset = valueStart + ((length + 3) & ~3);
  }
  if (offset !== end) return { ok: false, reason: 'bad-attribute' };
  return {
    ok: true,
    message: { type: raw.readUInt16BE(0), transactionId: raw.subarray(8, 20), attributes, raw },
  };
}

export function findAttribute(message: StunMessage, type: number): StunAttribute | undefined {
  for (const attribute of message.attributes) if (attribute.type === type) return attribute;
  return undefined;
}

/** USERNAME as text, or undefined when absent or not valid UTF-8-free ASCII (ICE usernames are ASCII). */
export function readUsername(message: StunMessage): string | undefined {
  const attribute = findAttribute(message, StunAttr.Username);
  if (attribute === undefined || attribute.value.length === 0 || attribute.value.length > 513)
    return undefined;
  for (const byte of attribute.value) if (byte < 0x21 || byte > 0x7e) return undefined;
  return attribute.value.toString('latin1');
}

/**
 * The ufrag of the agent that receives a connectivity check: in ICE the USERNAME of a request is
 * `receiverUfrag:senderUfrag` (RFC 8445 §7.2.2), so for a client's check it is the server's ufrag.
 */
export function readReceiverUfrag(message: StunMessage): string | undefined {
  const username = readUsername(message);
  if (username === undefined) return undefined;
  const colon = username.indexOf(':');
  return colon <= 0 ? undefined : username.slice(0, colon);
}

/** The header with its length field replaced, as the integrity and fingerprint rules require. */
function headerWithLength(raw: Buffer, length: number): Buffer {
  const header = Buffer.from(raw.subarray(0, STUN_HEADER_LENGTH));
  header.writeUInt16BE(length, 2);
  return header;
}

/**
 * Verifies MESSAGE-INTEGRITY (HMAC-SHA1, short-term credentials: the key is the password).
 * Attributes after it other than FINGERPRINT are ignored, as RFC 8489 §14.5 says.
 */
export function verifyMessageIntegrity(message: StunMessage, key: Buffer | string): boolean {
  const attribute = findAttribute(message, StunAttr.MessageIntegrity);
  if (attribute === undefined || attribute.value.length !== MESSAGE_INTEGRITY_LENGTH) return false;
  const lengthThroughIntegrity = attribute.offset + 4 + MESSAGE_INTEGRITY_LENGTH - STUN_HEADER_LENGTH;
  const hmac = createHmac('sha1', key);
  hmac.update(headerWithLength(message.raw, lengthThroughIntegrity));
  hmac.update(message.raw.subarray(STUN_HEADER_LENGTH, attribute.offset));
  return timingSafeEqual(hmac.digest(), attribute.value);
}

export function verifyFingerprint(message: StunMessage): boolean {
  const last = message.attributes[message.attributes.length - 1];
  if (last === undefined || last.type !== StunAttr.Fingerprint || last.value.length !== 4) return false;
  const expected = fingerprintOf(message.raw, last.offset);
  return last.value.readUInt32BE(0) === expected;
}

function fingerprintOf(raw: Buffer, fingerprintOffset: number): number {
  const header = headerWithLength(raw, fingerprintOffset + 8 - STUN_HEADER_LENGTH);
  const crc = crc32(raw.subarray(STUN_HEADER_LENGTH, fingerprintOffset), crc32(header));
  return (crc ^ FINGERPRINT_XOR) >>> 0;
}

export interface StunAttributeInput {
  readonly type: number;
  readonly value: Buffer;
}

export interface StunMessageInput {
  readonly type: number;
  readonly transactionId: Buffer;
  readonly attributes?: readonly StunAttributeInput[];
  /** Adds MESSAGE-INTEGRITY keyed with this password. */
  readonly integrityKey?: Buffer | string;
  /** Adds FINGERPRINT (after MESSAGE-INTEGRITY). */
  readonly fingerprint?: boolean;
}

export function encodeStun(input: StunMessageInput): Buffer {
  if (input.transactionId.length !== 12) throw new RangeError('STUN transaction ID must be 12 bytes');
  const parts: Buffer[] = [];
  let bodyLength = 0;
  for (const attribute of input.attributes ?? []) {
    const padded = (attribute.value.length + 3) & ~3;
    const encoded = Buffer.alloc(4 + padded);
    encoded.writeUInt16BE(attribute.type, 0);
    encoded.writeUInt16BE(attribute.value.length, 2);
    attribute.value.copy(encoded, 4);
    parts.push(encoded);
    bodyLength += encoded.length;
  }
  const integrityLength = input.integrityKey === undefined ? 0 : 4 + MESSAGE_INTEGRITY_LENGTH;
  const fingerprintLength = input.fingerprint ? 8 : 0;
  const out = Buffer.alloc(STUN_HEADER_LENGTH + bodyLength + integrityLength + fingerprintLength);
  out.writeUInt16BE(input.type, 0);
  out.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  input.transactionId.copy(out, 8);
  let offset = STUN_HEADER_LENGTH;
  for (const part of parts) offset += part.copy(out, offset);
  if (input.integrityKey !== undefined) {
    out.writeUInt16BE(offset + integrityLength - STUN_HEADER_LENGTH, 2);
    const digest = createHmac('sha1', input.integrityKey).update(out.subarray(0, offset)).digest();
    out.writeUInt16BE(StunAttr.MessageIntegrity, offset);
    out.writeUInt16BE(MESSAGE_INTEGRITY_LENGTH, offset + 2);
    digest.copy(out, offset + 4);
    offset += integrityLength;
  }
  out.writeUInt16BE(out.length - STUN_HEADER_LENGTH, 2);
  if (input.fingerprint) {
    out.writeUInt16BE(StunAttr.Fingerprint, offset);
    out.writeUInt16BE(4, offset + 2);
    out.writeUInt32BE(fingerprintOf(out, offset), offset + 4);
  }
  return out;
}

/** XOR-MAPPED-ADDRESS value (RFC 8489 §14.2). `address` must be an IP literal. */
export function encodeXorMappedAddress(mapped: TransportAddress, transactionId: Buffer): Buffer {
  const addressBytes = ipToBytes(mapped.address, mapped.family);
  const value = Buffer.alloc(4 + addressBytes.length);
  value[1] = mapped.family === 4 ? 0x01 : 0x02;
  value.writeUInt16BE(mapped.port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  const mask = xorMask(transactionId);
  for (let i = 0; i < addressBytes.length; i++) value[4 + i] = addressBytes[i]! ^ mask[i]!;
  return value;
}

export function decodeXorMappedAddress(value: Buffer, transactionId: Buffer): TransportAddress | undefined {
  const familyCode = value[1];
  const family: AddressFamily | undefined = familyCode === 1 ? 4 : familyCode === 2 ? 6 : undefined;
  if (family === undefined || value.length !== (family === 4 ? 8 : 20)) return undefined;
  const mask = xorMask(transactionId);
  const bytes = Buffer.alloc(value.length - 4);
  for (let i = 0; i < bytes.length; i++) bytes[i] = value[4 + i]! ^ mask[i]!;
  return { family, address: bytesToIp(bytes), port: value.readUInt16BE(2) ^ (STUN_MAGIC_COOKIE >>> 16) };
}

function xorMask(transactionId: Buffer): Buffer {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  return mask;
}

/** ERROR-CODE value (RFC 8489 §14.8). */
export function encodeErrorCode(code: number, reason: string): Buffer {
  if (!Number.isInteger(code) || code < 300 || code > 699)
    throw new RangeError(`bad STUN error code ${code}`);
  const text = Buffer.from(reason, 'utf8');
  const value = Buffer.alloc(4 + text.length);
  value[2] = Math.floor(code / 100);
  value[3] = code % 100;
  text.copy(value, 4);
  return value;
}

export function decodeErrorCode(value: Buffer): { code: number; reason: string } | undefined {
  if (value.length < 4) return undefined;
  const hundreds = value[2]! & 0x07;
  const rest = value[3]!;
  if (hundreds < 3 || hundreds > 6 || rest > 99) return undefined;
  return { code: hundreds * 100 + rest, reason: value.subarray(4).toString('utf8') };
}
