import * as net from "node:net";
import * as tls from "node:tls";

// A client that speaks HTTP/2 frame by frame over a bare TCP socket, so that
// tests can misbehave in ways node:http2's client will not: never acknowledge
// SETTINGS, keep every flow-control window shut, send oversized header lists.
// It answers PINGs, so that the server sees a live peer.

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** HTTP/2 frame types (RFC 9113, section 6). */
export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;

/** HTTP/2 SETTINGS identifiers (RFC 9113, section 6.5.2). */
export const Setting = { HEADER_TABLE_SIZE: 1, ENABLE_PUSH: 2, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_FRAME_SIZE: 5 } as const;

/** A frame received from the server. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** How the client behaves. */
export interface RawH2Options {
  /** SETTINGS sent with the preface, as [identifier, value] pairs. */
  settings?: [number, number][];
  /** Acknowledge the server's SETTINGS (default true). */
  ackSettings?: boolean;
  /** Answer the server's PINGs (default true). */
  answerPings?: boolean;
  /** The local address to connect from, such as 127.0.0.2, to look like another host on loopback. */
  localAddress?: string;
  /** Speak TLS (ALPN h2) and trust this CA: for a server's TLS port. */
  ca?: Buffer;
}

/** One raw HTTP/2 connection. */
export interface RawH2Client {
  readonly socket: net.Socket | tls.TLSSocket;
  /** Every frame received so far. */
  readonly frames: Frame[];
  /** Resolves when the socket closes. */
  readonly closed: Promise<void>;
  /** Opens a stream with these headers (pseudo-headers first); sends data if given, ending the stream after it. */
  request(streamId: number, headers: [string, string][], data?: Buffer, endStream?: boolean): void;
  /** Sends one frame. */
  send(type: number, flags: number, streamId: number, payload: Buffer): void;
  destroy(): void;
}

/** Encodes an HPACK integer with the given prefix size (RFC 7541, section 5.1). */
function hpackInt(value: number, prefixBits: number, firstByte = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** Encodes a header list as literal fields without indexing, no Huffman coding. */
export function hpackEncode(headers: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    parts.push(Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** The request headers of a gRPC call. */
export function grpcHeaders(path: string, extra: [string, string][] = []): [string, string][] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

/** Connects to a server on loopback (with TLS when given a CA) and sends the preface and SETTINGS. */
export async function connectRawH2(port: number, options: RawH2Options = {}): Promise<RawH2Client> {
  const address = { port, host: "127.0.0.1", ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) };
  const socket = options.ca === undefined ? net.connect(address) : tls.connect({ ...address, ca: options.ca, ALPNProtocols: ["h2"] });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once(options.ca === undefined ? "connect" : "secureConnect", resolve);
    socket.once("error", reject);
  });
  const frames: Frame[] = [];
  let buffer: Buffer = Buffer.alloc(0);
  const send = (type: number, flags: number, streamId: number, payload: Buffer) => {
    if (!socket.destroyed) socket.write(frame(type, flags, streamId, payload));
  };
  socket.on("data", (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 9) {
      const length = buffer.readUIntBE(0, 3);
      if (buffer.length < 9 + length) break;
      const f: Frame = { type: buffer[3]!, flags: buffer[4]!, streamId: buffer.readUInt32BE(5) & 0x7fffffff, payload: buffer.subarray(9, 9 + length) };
      buffer = buffer.subarray(9 + length);
      // Keep what tests look at, not the payload of every DATA frame.
      frames.push(f.type === FrameType.DATA ? { ...f, payload: Buffer.alloc(0) } : f);
      if (f.type === FrameType.SETTINGS && (f.flags & 1) === 0 && options.ackSettings !== false) send(FrameType.SETTINGS, 1, 0, Buffer.alloc(0));
      if (f.type === FrameType.PING && (f.flags & 1) === 0 && options.answerPings !== false) send(FrameType.PING, 1, 0, f.payload);
    }
  });
  const settings = Buffer.alloc(6 * (options.settings?.length ?? 0));
  (options.settings ?? []).forEach(([id, value], i) => {
    settings.writeUInt16BE(id, i * 6);
    settings.writeUInt32BE(value, i * 6 + 2);
  });
  socket.write(Buffer.concat([preface, frame(FrameType.SETTINGS, 0, 0, settings)]));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    socket,
    frames,
    closed,
    send,
    request(streamId, headers, data, endStream = true) {
      const block = hpackEncode(headers);
      // A block larger than a frame goes on in CONTINUATION frames; the last
      // frame carries END_HEADERS. END_STREAM when there is no body.
      const chunks: Buffer[] = [];
      for (let at = 0; at < block.length || at === 0; at += 16384) chunks.push(block.subarray(at, at + 16384));
      chunks.forEach((chunk, i) => {
        const last = i === chunks.length - 1 ? 0x4 : 0;
        if (i === 0) send(FrameType.HEADERS, last | (data === undefined && endStream ? 0x1 : 0), streamId, chunk);
        else send(FrameType.CONTINUATION, last, streamId, chunk);
      });
      if (data !== undefined) send(FrameType.DATA, endStream ? 0x1 : 0, streamId, data);
    },
    destroy: () => socket.destroy(),
  };
}
