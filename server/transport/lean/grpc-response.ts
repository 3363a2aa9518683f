import * as http2 from "node:http2";
import type { Compression } from "@connectrpc/connect/protocol";
import { contentTypeProto, grpcStatusOk, headerContentType, headerEncoding, headerGrpcStatus } from "@connectrpc/connect/protocol-grpc";
import { isConnectionSpecific } from "../connection-headers.js";
import { resetStream } from "../reset-stream.js";
import { resetUnfinishedRequest } from "../reset-unfinished-request.js";
import type { LeanContext } from "./lean-context.js";

// The frames of a gRPC response, written straight to an HTTP/2 stream: the
// headers, each message, then the status in trailers. The common headers and
// trailers are built once for every call.

/** The response headers of a call whose handler read none of its own, by the response's compression. */
const plainHeaders = new Map<string | null, http2.OutgoingHttpHeaders>();

/** The trailers of a call that ended well and whose handler read none of its own. */
const okTrailers: http2.OutgoingHttpHeaders = Object.freeze({ [headerGrpcStatus]: grpcStatusOk });

/**
 * Node's form of a call's response headers: built once for all the calls
 * that left them as they started (node copies what it is given), or from the
 * context's Headers. Values of a repeated name come joined, as fetch's
 * Headers gives them, which is what Connect's adapter writes too.
 */
export function responseHeaders(context: LeanContext, compression: Compression | null): http2.OutgoingHttpHeaders {
  const touched = context.touched().header;
  if (touched !== undefined) return nodeHeaders(touched, { ":status": 200 });
  const encoding = compression === null ? null : compression.name;
  let headers = plainHeaders.get(encoding);
  if (headers === undefined) {
    headers = Object.freeze({ ":status": 200, [headerContentType]: contentTypeProto, ...(encoding === null ? {} : { [headerEncoding]: encoding }) });
    plainHeaders.set(encoding, headers);
  }
  return headers;
}

/** Node's form of a call's trailers: the shared OK trailers, or the context's. */
export function responseTrailers(context: LeanContext): http2.OutgoingHttpHeaders {
  const touched = context.touched().trailer;
  return touched === undefined ? okTrailers : nodeHeaders(touched, {});
}

/**
 * Node's form of Headers, as connect-node's webHeaderToNodeHeaders makes it
 * (each set-cookie kept apart), less the connection-specific headers HTTP/2
 * forbids, which node's stream would throw for and its compatibility layer
 * drops with a warning, as Connect's path then does.
 */
function nodeHeaders(headers: Headers, into: http2.OutgoingHttpHeaders): http2.OutgoingHttpHeaders {
  headers.forEach((value, name) => {
    if (name === "set-cookie" || isConnectionSpecific(name, value)) return;
    into[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) into["set-cookie"] = cookies;
  return into;
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
    // The stream may have been reset between the last write and now. A
    // throw here would be an uncaught exception: node calls this listener
    // from its own event.
    try {
      if (!stream.closed) stream.sendTrailers(trailers);
    } catch {
      resetStream(stream, http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    // A call answered before its body was complete (too large, one message
    // too many, refused by its gate): the reader drops what still comes, and
    // the stream ends here rather than at the body timeout. Node sends the
    // trailers in a setImmediate: the reset, queued after it, follows them.
    if (!stream.readableEnded) setImmediate(resetUnfinishedRequest, stream);
  });
  if (body === undefined) stream.end();
  else stream.end(body);
}
