// The server-side ICE ufrag is the routing key (docs/architecture.md#the-ufrag-is-the-routing-key): it names the cluster and transceiver
// that own a session and carries a MAC, so any relay can reject a forged one with no lookup and no
// state. The ICE password is derived from the ufrag with the same key, so a relay can also verify a
// Binding request's MESSAGE-INTEGRITY without knowing anything about the session.
//
// Layout, 25 bytes, written as 40 characters of lowercase base32 (RFC 4648 alphabet, a subset of
// [a-z0-9] and of RFC 8839 ice-char):
//
//   0       version (1)
//   1       key ID
//   2..3    cluster ID (uint16)
//   4..7    transceiver ID (uint32)
//   8..11   issued at (uint32, Unix seconds)
//   12..17  nonce (48 random bits)
//   18..24  tag: first 56 bits of HMAC-SHA256(key, "voice-edge/ufrag/v1" || bytes 0..17)
//
// The issue time lets any relay tell, with no state, whether a session began before or after its
// transceiver started draining (a draining transceiver keeps old sessions and takes no new ones),
// and tells operators when a rotated-out key can no longer be in use.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const UFRAG_VERSION = 1;
export const UFRAG_LENGTH = 40;
const PAYLOAD_BYTES = 18;
const TAG_BYTES = 7;
export const NONCE_BYTES = 6;
const TAG_LABEL = Buffer.from('voice-edge/ufrag/v1');
const PASSWORD_LABEL = Buffer.from('voice-edge/ice-pwd/v1');
/** Password bytes before base32: 160 bits, 32 characters (RFC 8839 asks for at least 22). */
const PASSWORD_BYTES = 20;
export const MIN_KEY_BYTES = 16;

export interface RoutingKey {
  /** 0–255, carried in every ufrag so old keys keep verifying during rotation. */
  readonly id: number;
  readonly secret: Buffer;
}

export interface UfragFields {
  readonly clusterId: number;
  readonly transceiverId: number;
  readonly keyId: number;
  /** When the session's credentials were minted, in Unix seconds. */
  readonly issuedAt: number;
  readonly nonce: Buffer;
}

export type UfragDecodeError = 'bad-length' | 'bad-alphabet' | 'bad-version' | 'unknown-key' | 'bad-tag';
export type UfragDecodeResult = { ok: true; fields: UfragFields } | { ok: false; reason: UfragDecodeError };

/** The set of keys a component accepts, and the one it signs new ufrags with. */
export class RoutingKeyring {
  readonly #keys = new Map<number, RoutingKey>();
  readonly current: RoutingKey;

  constructor(keys: readonly RoutingKey[], currentId?: number) {
    if (keys.length === 0) throw new RangeError('a keyring needs at least one routing key');
    for (const key of keys) {
      if (!Number.isInteger(key.id) || key.id < 0 || key.id > 255) {
        throw new RangeError(`routing key id ${key.id} is not an integer in 0..255`);
      }
      if (key.secret.length < MIN_KEY_BYTES) {
        throw new RangeError(`routing key ${key.id} is shorter than ${MIN_KEY_BYTES} bytes`);
      }
      if (this.#keys.has(key.id)) throw new RangeError(`routing key id ${key.id} appears twice`);
      this.#keys.set(key.id, key);
    }
    const current = this.#keys.get(currentId ?? Math.max(...this.#keys.keys()));
    if (current === undefined)
      throw new RangeError(`current routing key id ${currentId} is not in the keyring`);
    this.current = current;
  }

  get(id: number): RoutingKey | undefined {
    return this.#keys.get(id);
  }

  get ids(): number[] {
    return [...this.#keys.keys()];
  }
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const BASE32_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE32.length; i++) BASE32_VALUE[BASE32.charCodeAt(i)] = i;

/** Base32 without padding; `bytes.length * 8` must be a multiple of 5 for a lossless round trip. */
export function base32Encode(bytes: Buffer): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/** Inverse of base32Encode; undefined on any character outside the alphabet. */
export function base32Decode(text: string, byteLength: number): Buffer | undefined {
  const out = Buffer.alloc(byteLength);
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE32_VALUE[code]! : -1;
    if (value < 0) return undefined;
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (index < byteLength) out[index++] = (buffer >>> bits) & 0xff;
    }
  }
  return index === byteLength ? out : undefined;
}

function tagOf(key: RoutingKey, payload: Buffer): Buffer {
  return createHmac('sha256', key.secret).update(TAG_LABEL).update(payload).digest().subarray(0, TAG_BYTES);
}

export function encodeUfrag(fields: UfragFields, key: RoutingKey): string {
  if (fields.keyId !== key.id)
    throw new RangeError(`ufrag key ID ${fields.keyId} does not match key ${key.id}`);
  // One byte on the wire: without this check key 300 would be written as 44 and never verify.
  if (!Number.isInteger(fields.keyId) || fields.keyId < 0 || fields.keyId > 0xff) {
    throw new RangeError(`key ID ${fields.keyId} is not an integer in 0..255`);
  }
  if (!Number.isInteger(fields.clusterId) || fields.clusterId < 0 || fields.clusterId > 0xffff) {
    throw new RangeError(`cluster ID ${fields.clusterId} is not an integer in 0..65535`);
  }
  if (
    !Number.isInteger(fields.transceiverId) ||
    fields.transceiverId < 0 ||
    fields.transceiverId > 0xffffffff
  ) {
    throw new RangeError(`transceiver ID ${fields.transceiverId} is not an integer in 0..4294967295`);
  }
  if (!Number.isInteger(fields.issuedAt) || fields.issuedAt < 0 || fields.issuedAt > 0xffffffff) {
    throw new RangeError(`issue time ${fields.issuedAt} is not a Unix time in seconds within 0..4294967295`);
  }
  if (fields.nonce.length !== NONCE_BYTES) throw new RangeError(`ufrag nonce must be ${NONCE_BYTES} bytes`);
  const bytes = Buffer.alloc(PAYLOAD_BYTES + TAG_BYTES);
  bytes[0] = UFRAG_VERSION;
  bytes[1] = fields.keyId;
  bytes.writeUInt16BE(fields.clusterId, 2);
  bytes.writeUInt32BE(fields.transceiverId, 4);
  bytes.writeUInt32BE(fields.issuedAt, 8);
  fields.nonce.copy(bytes, 12);
  tagOf(key, bytes.subarray(0, PAYLOAD_BYTES)).copy(bytes, PAYLOAD_BYTES);
  return base32Encode(bytes);
}

/** A fresh ufrag for a new session, signed with the keyring's current key, issued at `nowMs`. */
export function newUfrag(
  keyring: RoutingKeyring,
  owner: { clusterId: number; transceiverId: number },
  nowMs: number = Date.now(),
  random: (size: number) => Buffer = randomBytes,
): string {
  const key = keyring.current;
  const issuedAt = Math.floor(nowMs / 1000);
  return encodeUfrag({ ...owner, keyId: key.id, issuedAt, nonce: random(NONCE_BYTES) }, key);
}

/** Verifies and decodes a ufrag. Cost: one base32 decode and one HMAC; no allocation beyond that. */
export function decodeUfrag(ufrag: string, keyring: RoutingKeyring): UfragDecodeResult {
  if (ufrag.length !== UFRAG_LENGTH) return { ok: false, reason: 'bad-length' };
  const bytes = base32Decode(ufrag, PAYLOAD_BYTES + TAG_BYTES);
  if (bytes === undefined) return { ok: false, reason: 'bad-alphabet' };
  if (bytes[0] !== UFRAG_VERSION) return { ok: false, reason: 'bad-version' };
  const key = keyring.get(bytes[1]!);
  if (key === undefined) return { ok: false, reason: 'unknown-key' };
  const expected = tagOf(key, bytes.subarray(0, PAYLOAD_BYTES));
  if (!timingSafeEqual(expected, bytes.subarray(PAYLOAD_BYTES))) return { ok: false, reason: 'bad-tag' };
  return {
    ok: true,
    fields: {
      keyId: key.id,
      clusterId: bytes.readUInt16BE(2),
      transceiverId: bytes.readUInt32BE(4),
      issuedAt: bytes.readUInt32BE(8),
      nonce: bytes.subarray(12, PAYLOAD_BYTES),
    },
  };
}

/** The ICE password that belongs to a ufrag: 32 base32 characters keyed by the ufrag's key. */
export function deriveIcePassword(ufrag: string, key: RoutingKey): string {
  const digest = createHmac('sha256', key.secret).update(PASSWORD_LABEL).update(ufrag, 'latin1').digest();
  return base32Encode(digest.subarray(0, PASSWORD_BYTES));
}
