import type * as http2 from "node:http2";

/** The streams this server reset, as opposed to those its peers reset. */
const resetHere = new WeakSet<http2.Http2Stream>();

/**
 * Resets a stream with this code, unless it is closed already, and remembers
 * that the server did. Node reports a reset the same way whichever side sent
 * it (the same rstCode, the same "aborted" and "close" events), and the guard
 * against rapid resets (limit-unanswered-resets.ts) must count only the
 * peer's: every reset the server sends goes through here, so that it can tell
 * them apart.
 */
export function resetStream(stream: http2.Http2Stream, code: number): void {
  if (stream.closed || stream.destroyed) return;
  resetHere.add(stream);
  stream.close(code);
}

/** Whether this stream was reset by the server, through {@link resetStream}. */
export function resetByServer(stream: http2.Http2Stream): boolean {
  return resetHere.has(stream);
}
