import type * as http from "node:http";
import * as http2 from "node:http2";
import { resetStream } from "./reset-stream.js";

/**
 * What closes a call's transport without a status (see hardCloseKey): its
 * HTTP/2 stream, reset with ENHANCE_YOUR_CALM, or its HTTP/1.1 socket.
 */
export function hardClose(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): () => void {
  if ("stream" in req) return hardCloseStream(req.stream);
  // A response that ended in time has handed its keep-alive socket on to
  // the next request: leave it alone.
  const socket = req.socket;
  return () => {
    if (!res.writableFinished) socket.destroy();
  };
}

/** What closes a call's HTTP/2 stream without a status: a reset with ENHANCE_YOUR_CALM. */
export function hardCloseStream(stream: http2.ServerHttp2Stream): () => void {
  return () => resetStream(stream, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

/**
 * What tells whether a call's connection went away (see droppedKey). An
 * HTTP/2 client that cancels a call resets its stream and keeps the
 * connection, so a stream that closed with its session still up was a
 * goodbye. HTTP/1.1 has no way to cancel a call but closing its socket,
 * which cannot be told from a drop: it counts as one.
 */
export function connectionGone(req: http.IncomingMessage | http2.Http2ServerRequest): () => boolean {
  return "stream" in req ? streamConnectionGone(req.stream) : () => true;
}

/** What tells whether the connection of a call on this HTTP/2 stream went away (see connectionGone). */
export function streamConnectionGone(stream: http2.ServerHttp2Stream): () => boolean {
  // Judged when the stream is aborted, not later: a client that cancels and
  // then closes its connection at once (a process exiting) would otherwise be
  // taken for a drop by the time the handler asks. One listener function for
  // all streams, so that a stream pays no closure for it.
  stream.on("aborted", judgeAbort);
  return () => {
    const judged = abortsJudged.get(stream);
    return judged ?? isDown(stream.session);
  };
}

/** Streams aborted so far, and whether their connection was down then (a drop) or up (a goodbye). */
const abortsJudged = new WeakMap<http2.Http2Stream, boolean>();

function judgeAbort(this: http2.Http2Stream): void {
  // Node aborts the streams of a destroyed session after marking it destroyed.
  abortsJudged.set(this, isDown(this.session));
}

function isDown(session: http2.Http2Session | undefined): boolean {
  return session === undefined || session.destroyed || session.closed;
}
