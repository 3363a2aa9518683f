import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectRequestSchema } from "../../gen/chat/v1/chat_pb.js";

/** Frames one gRPC message: a flag byte, a 4-byte length, the bytes. */
export function grpcFrame(message: Uint8Array, declaredLength = message.length): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([header, message]);
}

/** What a raw gRPC call got back. */
export interface RawResponse {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  rstCode: number;
}

/**
 * Makes one gRPC call over a plain node:http2 connection with the given body
 * bytes, so that tests can send what no generated client would.
 */
export function rawGrpcCall(baseUrl: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...headers,
    });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => {});
    stream.on("close", () => {
      session.close();
      resolve({
        status: responseHeaders[":status"] as number | undefined,
        headers: responseHeaders,
        trailers,
        data: Buffer.concat(chunks),
        rstCode: stream.rstCode ?? 0,
      });
    });
    session.on("error", reject);
    stream.end(body);
  });
}

/**
 * The gRPC status of a raw response: from the trailers, or from the headers
 * of a trailers-only response.
 */
export function grpcStatus(res: RawResponse): { code: number; message: string } {
  const source = res.trailers["grpc-status"] !== undefined ? res.trailers : res.headers;
  return {
    code: Number(source["grpc-status"]),
    message: decodeURIComponent(String(source["grpc-message"] ?? "")),
  };
}

/** A Connect stream on a raw HTTP/2 connection that has stopped reading. */
export interface StalledStream {
  readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;
  /** Resolves with the stream's RST_STREAM code (0 for none) once it closes. */
  readonly closed: Promise<number>;
}

/**
 * Opens a Connect stream for the user on a connection of its own, reads the
 * first response (Connected), then stops reading: the server's writes to it
 * soon block on HTTP/2 flow control, as with a client that hung.
 */
export async function openStalledStream(baseUrl: string, username: string): Promise<StalledStream> {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": "/chat.v1.ChatService/Connect",
    "content-type": "application/grpc+proto",
    te: "trailers",
  });
  stream.on("error", () => {});
  const closed = new Promise<number>((resolve) => stream.on("close", () => resolve(stream.rstCode ?? 0)));
  stream.end(grpcFrame(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username }))));
  await new Promise<void>((resolve) => stream.once("data", () => resolve()));
  stream.pause();
  return { session, stream, closed };
}
