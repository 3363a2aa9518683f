import * as http2 from "node:http2";
import type { LeanPath } from "./lean/lean-path.js";
import type { NodeHandler } from "./node-handler.js";
import { resetStream } from "./reset-stream.js";
import { resetUnfinishedRequest } from "./reset-unfinished-request.js";

/** A listener of an HTTP/2 server's "stream" event. */
export type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * Creates what serves each HTTP/2 stream of the gRPC port: the lean path
 * when it takes the call, and otherwise the handler, through node's
 * compatibility request and response objects, built here only for the
 * streams that need them. Node builds them for every stream of a server with
 * a "request" listener, and offers no way for a "stream" listener to pass a
 * stream on to that layer, so this does what node's own does (lib/internal/
 * http2/compat.js, onServerStream): CONNECT is refused with 405, and an
 * Expect of 100-continue is answered, any other with 417.
 */
export function createStreamListener(lean: LeanPath | undefined, handler: NodeHandler, onError: (error: unknown) => void = () => {}): StreamListener {
  const serve: StreamListener = (stream, headers, _flags, rawHeaders) => {
    // An error of one stream (a reset with an error code, a write after the
    // client left) is that stream's end, and is reported through its close;
    // without a listener it would end the process. The compatibility layer
    // ignores them the same way.
    stream.on("error", ignoreStreamError);
    // A stream already closed when it gets here (refused on a connection
    // being cut off for rapid resets, see limit-unanswered-resets.ts, or
    // reset by its client before the server got to it) wants no answer.
    if (stream.closed) return;
    if (lean?.take(stream, headers)) return;
    const req = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new http2.Http2ServerResponse(stream);
    endUnreadBodyAfterResponse(stream);
    if (headers[":method"] === "CONNECT") {
      res.statusCode = 405;
      res.end();
      return;
    }
    if (headers.expect !== undefined) {
      if (headers.expect !== "100-continue") {
        res.statusCode = 417;
        res.end();
        return;
      }
      res.writeContinue();
    }
    handler(req, res);
  };
  // Node calls this from the session's event: a throw here, from any layer
  // below, would end the process. It ends that stream alone.
  return (stream, headers, flags, rawHeaders) => {
    try {
      serve(stream, headers, flags, rawHeaders);
    } catch (error) {
      onError(error);
      resetStream(stream, http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  };
}

function ignoreStreamError(): void {}

/**
 * Once a response of the compatibility layer is complete, resets its stream
 * if the client is still sending the request (reset-unfinished-request.ts).
 * Node does so itself only for a response sent without asking for trailers
 * whose body was never read; this layer always asks for them, so a stream
 * answered without reading its body (404, 405, 417, or an error Connect
 * raises before reading) stayed open for as long as its client liked: each
 * held a flow-control window of bytes no one reads and kept its connection
 * from ever being idle, and the body guard watches only the calls of the
 * lean path's routes.
 */
function endUnreadBodyAfterResponse(stream: http2.ServerHttp2Stream): void {
  let trailers = false;
  // A response with a body ends with trailers. The response's own listener
  // of this event, added when it was built and so called first, sends them
  // in a setImmediate: this one is queued after it, so that the reset
  // follows the trailers into nghttp2's queue and onto the wire.
  stream.once("wantTrailers", () => {
    trailers = true;
    setImmediate(resetUnfinishedRequest, stream);
  });
  // A response without a body ends with END_STREAM on its headers, and asks
  // for no trailers: it is complete once node has sent those headers.
  stream.once("finish", () =>
    setImmediate(() => {
      if (!trailers && stream.state.localClose === 1) resetUnfinishedRequest(stream);
    }),
  );
}
