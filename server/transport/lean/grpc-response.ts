import type * as http2 from "node:http2";
import { contentTypeProto, grpcStatusOk, headerContentType, headerGrpcStatus } from "@connectrpc/connect/protocol-grpc";

// The frames of a gRPC response, written straight to an HTTP/2 stream: the
// headers, each message, then the status in trailers. The common headers and
// trailers are built once for every call.

/** The response headers of a call whose handler set none of its own. */
export const plainHeaders: http2.OutgoingHttpHeaders = Object.freeze({ ":status": 200, [headerContentType]: contentTypeProto });

/** The trailers of a call that ended well and whose handler set none of its own. */
export const okTrailers: http2.OutgoingHttpHeaders = Object.freeze({ [headerGrpcStatus]: grpcStatusOk });

/**
 * Node's form of a call's response headers. Values of a repeated name come
 * joined, as fetch's Headers gives them, which is what Connect's adapter
 * writes too.
 */
export function responseHeaders(headers: Headers): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ":status": 200 };
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/** Node's form of a call's trailers. */
export function trailersOf(trailers: Headers): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  trailers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/**
 * Sends the response headers, asking node to wait for the trailers: every
 * gRPC response ends with them.
 */
export function sendHeaders(stream: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders): void {
  stream.respond(headers, { waitForTrailers: true });
}

/**
 * Ends the response: the last message if any, then the trailers once node
 * asks for them. The headers must have been sent.
 */
export function endResponse(stream: http2.ServerHttp2Stream, trailers: http2.OutgoingHttpHeaders, body?: Uint8Array): void {
  stream.once("wantTrailers", () => {
    // The stream may have been reset between the last write and now.
    if (!stream.closed) stream.sendTrailers(trailers);
  });
  if (body === undefined) stream.end();
  else stream.end(body);
}
