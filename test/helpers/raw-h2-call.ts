import * as http2 from "node:http2";
import * as zlib from "node:zlib";
import { type DescMessage, fromBinary, toJson } from "@bufbuild/protobuf";

/** Everything a gRPC call put on the wire, decoded for comparison. */
export interface WireTranscript {
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  /** Each response message: its compressed flag, and the message as JSON. */
  messages: { compressed: boolean; json: unknown }[];
  /** The RST_STREAM code the stream closed with (0 for none). */
  rstCode: number;
}

/** How a raw call sends its request. */
export interface RawCallOptions {
  headers?: Record<string, string>;
  /** Compress the request message with gzip (and say so in grpc-encoding). */
  gzipRequest?: boolean;
  /** Reset the stream with CANCEL this long after sending the request. */
  cancelAfterMs?: number;
  /** Reset the stream with CANCEL once this many messages have arrived. */
  cancelAfterMessages?: number;
  /** Reset the stream with CANCEL when this aborts (for streams left open while other calls run). */
  signal?: AbortSignal;
  /** Sends these bytes as the whole request body instead of the framed message (for malformed bodies). */
  rawBody?: Uint8Array;
  /** Called with each response message as it arrives, decoded to JSON. */
  onMessage?: (json: unknown) => void;
}

/**
 * Makes one gRPC call on an open HTTP/2 session and records what came back:
 * headers (without the date, which differs between runs), trailers, and the
 * response messages, decompressed and decoded with the given schema.
 */
export function rawH2Call(
  session: http2.ClientHttp2Session,
  path: string,
  request: Uint8Array,
  output: DescMessage,
  options: RawCallOptions = {},
): Promise<WireTranscript> {
  return new Promise((resolve) => {
    const data = options.gzipRequest ? zlib.gzipSync(request) : request;
    const frame = Buffer.alloc(5 + data.length);
    frame[0] = options.gzipRequest ? 1 : 0;
    frame.writeUInt32BE(data.length, 1);
    frame.set(data, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...(options.gzipRequest ? { "grpc-encoding": "gzip" } : {}),
      ...options.headers,
    });
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    let buffer = Buffer.alloc(0);
    const messages: WireTranscript["messages"] = [];
    const cancel = () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    stream.on("response", (h) => {
      const { date: _date, ...rest } = h;
      headers = rest;
    });
    stream.on("trailers", (t) => (trailers = { ...t }));
    stream.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 5 && buffer.length >= 5 + buffer.readUInt32BE(1)) {
        const length = buffer.readUInt32BE(1);
        const compressed = buffer[0] === 1;
        let bytes = buffer.subarray(5, 5 + length);
        buffer = buffer.subarray(5 + length);
        if (compressed) {
          bytes = headers["grpc-encoding"] === "br" ? zlib.brotliDecompressSync(bytes) : zlib.gunzipSync(bytes);
        }
        const json = toJson(output, fromBinary(output, bytes));
        messages.push({ compressed, json });
        options.onMessage?.(json);
        if (messages.length === options.cancelAfterMessages) cancel();
      }
    });
    stream.on("error", () => {});
    stream.on("close", () => resolve({ headers, trailers, messages, rstCode: stream.rstCode ?? 0 }));
    stream.end(options.rawBody ?? frame);
    if (options.cancelAfterMs !== undefined) setTimeout(cancel, options.cancelAfterMs);
    options.signal?.addEventListener("abort", cancel);
  });
}
