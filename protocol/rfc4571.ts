// RFC 4571 framing, as ICE-TCP uses it (RFC 6544 §3): each packet on the byte stream is preceded by
// its length as a 16-bit big-endian number. Sans-I/O: the reader is fed whatever chunks the socket
// delivers and hands out whole packets; it never holds more than one partial packet (at most
// 2 + 65,535 bytes), so a peer cannot make it grow.

/** The largest packet a 16-bit length can announce. */
export const MAX_FRAME_LENGTH = 0xffff;

/** The 2-byte length prefix of `packet`. Throws a RangeError for a packet over 65,535 bytes. */
export function frameHeader(packet: Buffer): Buffer {
  if (packet.length > MAX_FRAME_LENGTH)
    throw new RangeError(`a ${packet.length}-byte packet cannot be framed`);
  const header = Buffer.allocUnsafe(2);
  header.writeUInt16BE(packet.length, 0);
  return header;
}

/** `packet` with its length prefix, in one buffer. */
export function frame(packet: Buffer): Buffer {
  return Buffer.concat([frameHeader(packet), packet]);
}

/**
 * Splits a byte stream into the packets it frames. Chunks of an incomplete packet are kept as they
 * came and joined once, when the packet completes: a peer trickling a large packet byte by byte
 * costs one copy of it, not one per byte.
 */
export class FrameReader {
  readonly #maxPacketLength: number;
  /** Chunks not yet consumed, and their total length. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  #tooLarge = false;

  /** `maxPacketLength`: a longer announced packet stops the reader (see tooLarge). */
  constructor(maxPacketLength = MAX_FRAME_LENGTH) {
    this.#maxPacketLength = maxPacketLength;
  }

  /**
   * The stream announced a packet over the limit: nothing more is read (the caller closes the
   * stream) and nothing is held for it.
   */
  get tooLarge(): boolean {
    return this.#tooLarge;
  }

  /** Bytes held for an incomplete packet (at most 2 + 65,535 − 1). */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The packets `chunk` completes, in order. A returned packet may be a view into `chunk`, so a
   * caller that keeps it past the next push must not reuse the chunk's memory (Node never does).
   */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0 || this.#tooLarge) return [];
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const packets: Buffer[] = [];
    while (this.#buffered >= 2) {
      const length = this.#peekLength();
      if (length > this.#maxPacketLength) {
        this.#tooLarge = true;
        this.#chunks = [];
        this.#buffered = 0;
        break;
      }
      if (this.#buffered < 2 + length) break;
      const head = this.#chunks[0]!;
      let data: Buffer;
      if (head.length >= 2 + length) {
        data = head;
      } else {
        data = Buffer.concat(this.#chunks, this.#buffered);
        this.#chunks = [data];
      }
      packets.push(data.subarray(2, 2 + length));
      const rest = data.subarray(2 + length);
      this.#buffered -= 2 + length;
      this.#chunks[0] = rest;
      if (rest.length === 0) this.#chunks.shift();
    }
    // The tail of a consumed chunk is copied so it does not keep the whole chunk alive.
    if (this.#chunks.length === 1 && this.#chunks[0] !== chunk && this.#buffered < 64) {
      this.#chunks[0] = Buffer.from(this.#chunks[0]!);
    }
    return packets;
  }

  /** The length field at the head of the stream (which may straddle two chunks). */
  #peekLength(): number {
    const head = this.#chunks[0]!;
    if (head.length >= 2) return head.readUInt16BE(0);
    return (head[0]! << 8) | this.#chunks[1]![0]!;
  }
}
