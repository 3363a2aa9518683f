import * as http2 from "node:http2";
import { resetStream } from "./reset-stream.js";

/**
 * Resets with NO_ERROR a stream whose response is complete while its client
 * is still sending the request, as RFC 9113 (section 8.1) lets a server do:
 * the client learns that the rest of its body is not wanted, and the stream
 * holds nothing more. A request that has ended, or whose client has sent
 * END_STREAM, is left to close by itself. Called once the response's last
 * frame is in nghttp2's queue, so that the reset follows it onto the wire.
 */
export function resetUnfinishedRequest(stream: http2.ServerHttp2Stream): void {
  if (stream.closed || stream.readableEnded || stream.state.remoteClose === 1) return;
  resetStream(stream, http2.constants.NGHTTP2_NO_ERROR);
}
