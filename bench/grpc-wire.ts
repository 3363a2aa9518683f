/**
 * Just enough of the gRPC framing and of the chat.v1 wire format for the
 * load generator and the raw baseline to work on bytes without building
 * message objects: the point is to keep the generator cheap.
 */

/** Prefixes a message with the 5-byte gRPC frame header (uncompressed). */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function varintLength(value: number): number {
  let n = value;
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, start: number, value: number): number {
  let pos = start;
  let n = value;
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Encodes a message whose fields are all length-delimited, by field number. */
export function encodeFields(fields: [number, Uint8Array | string][]): Buffer {
  const parts = fields.map(([no, value]) => [no, typeof value === "string" ? Buffer.from(value, "utf8") : value] as const);
  let size = 0;
  for (const [no, bytes] of parts) size += varintLength(no << 3) + varintLength(bytes.length) + bytes.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const [no, bytes] of parts) {
    pos = writeVarint(out, pos, (no << 3) | 2);
    pos = writeVarint(out, pos, bytes.length);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/** Reads a varint at pos; returns [value, next position]. */
function readVarint(buf: Uint8Array, start: number): [number, number] {
  let pos = start;
  let value = 0;
  let shift = 1;
  for (;;) {
    const b = buf[pos++]!;
    value += (b & 0x7f) * shift;
    if (b < 0x80) return [value, pos];
    shift *= 128;
  }
}

/**
 * Calls onField for each field of a message in buf[start, end), with the
 * bounds of its payload for length-delimited fields. Other wire types are
 * skipped (the chat messages the generator reads have none it needs).
 */
export function forEachField(buf: Uint8Array, start: number, end: number, onField: (no: number, from: number, to: number) => void): void {
  let pos = start;
  while (pos < end) {
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const no = tag >>> 3;
    switch (tag & 7) {
      case 0:
        [, pos] = readVarint(buf, pos);
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        let len: number;
        [len, pos] = readVarint(buf, pos);
        onField(no, pos, pos + len);
        pos += len;
        break;
      }
      default:
        throw new Error(`unexpected wire type ${tag & 7}`);
    }
  }
}

/**
 * Splits a growing byte stream into gRPC messages. Feed it chunks; it calls
 * onMessage with each complete message's bytes.
 */
export function createFrameReader(onMessage: (buf: Buffer, start: number, end: number) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    let pos = 0;
    while (buf.length - pos >= 5) {
      const len = buf.readUInt32BE(pos + 1);
      if (buf.length - pos - 5 < len) break;
      onMessage(buf, pos + 5, pos + 5 + len);
      pos += 5 + len;
    }
    pending = pos === buf.length ? undefined : buf.subarray(pos);
    if (pending !== undefined && pos > 0) pending = Buffer.from(pending);
    buf = Buffer.alloc(0);
  };
}
