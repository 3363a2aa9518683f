import type * as http from "node:http";
import * as http2 from "node:http2";

/**
 * What closes a call's transport without a status (see hardCloseKey): its
 * HTTP/2 stream, reset with ENHANCE_YOUR_CALM, or its HTTP/1.1 socket.
 */
export function hardClose(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): () => void {
  if ("stream" in req) {
    const stream = req.stream;
    return () => {
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    };
  }
  // A response that ended in time has handed its keep-alive socket on to
  // the next request: leave it alone.
  const socket = req.socket;
  return () => {
    if (!res.writableFinished) socket.destroy();
  };
}
