import * as http2 from "node:http2";
import type { Logger } from "pino";
import { resetByServer, resetStream } from "./reset-stream.js";

/**
 * How long a connection cut off keeps its socket after the GOAWAY, for the
 * peer to read it: an attacker busy sending may take a while to read, and
 * the TCP reset that closing the socket on its unread frames causes would
 * discard a GOAWAY it has not read yet. Whatever it sends meanwhile is
 * ignored.
 */
const goawayLingerMs = 1000;

/** The allowance {@link limitUnansweredResets} gives one connection. */
export interface UnansweredResetLimits {
  /** Streams the peer may reset before they were answered, at once; 0 for no limit. */
  unansweredResetBurst: number;
  /** And per second beyond the burst, as the allowance refills. */
  unansweredResetRate: number;
}

/**
 * Closes a connection whose peer resets too many streams before the server
 * answered them: the HTTP/2 rapid-reset attack (CVE-2023-44487), in which a
 * client opens streams and resets them at once, by the thousand, so that the
 * server starts work on each and the client is never held back by the
 * limit on concurrent streams.
 *
 * nghttp2 has a defence of its own (node's streamResetBurst and
 * streamResetRate), but it counts every RST_STREAM received, and every gRPC
 * client cancels a call with one: a gateway whose users leave at 33 a second
 * or more, each ending a stream that was served for minutes, would exhaust
 * it and lose the connection, and every user on it. So nghttp2's limit is
 * raised to a backstop (grpc-server.ts), and this guard counts only what
 * marks the attack: a stream the peer reset (not the server, see
 * reset-stream.ts) before the server sent its response headers. A departing
 * user's stream was answered long before, and never counts; nor does a call
 * the server refused at once (a trailers-only answer), which cost it little.
 *
 * The allowance is a token bucket of unansweredResetBurst streams refilled
 * at unansweredResetRate a second; a connection that overdraws it gets a
 * GOAWAY with ENHANCE_YOUR_CALM and is destroyed a second later, and the
 * log says so once.
 */
export function limitUnansweredResets(session: http2.ServerHttp2Session, limits: UnansweredResetLimits, logger: Logger): void {
  const burst = limits.unansweredResetBurst;
  if (burst === 0) return;
  const perMs = limits.unansweredResetRate / 1000;
  let tokens = burst;
  let updatedAt = performance.now();
  let unanswered = 0;
  const openedAt = performance.now();
  let lastStreamId = 0;
  let opened = 0;
  let cutOffStarted = false;
  const cutOff = () => {
    if (cutOffStarted) return;
    cutOffStarted = true;
    // The GOAWAY first, on its own: nghttp2 ignores the streams the peer
    // opens after it, so they cost next to nothing. Destroying the session
    // at once would close a socket with the attacker's frames still unread,
    // and the kernel would answer with a TCP reset that can overtake the
    // GOAWAY, leaving the peer without the reason.
    // With the last stream the server took, so that a client that retries
    // what was not processed does not retry what was.
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, lastStreamId);
    const timer = setTimeout(() => session.destroy(undefined, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM), goawayLingerMs);
    timer.unref();
    session.once("close", () => clearTimeout(timer));
  };
  // Before node's own listener, which hands the stream to the request
  // handler: nghttp2 takes new streams until the GOAWAY has gone out, which
  // on a busy connection comes after hundreds more of the attacker's, and
  // those are refused here (the handler skips a closed stream) rather than
  // served.
  session.prependListener("stream", (stream) => {
    if (cutOffStarted) {
      resetStream(stream, http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    opened++;
    lastStreamId = Math.max(lastStreamId, stream.id ?? 0);
    stream.on("close", onStreamClose);
  });
  // One listener for all the session's streams ("close" comes once), rather
  // than a closure and a once-wrapper for each.
  function onStreamClose(this: http2.ServerHttp2Stream): void {
    // Node closes every stream of a session being destroyed: those were
    // not reset by the peer, and are not counted.
    if (this.headersSent || session.destroyed || cutOffStarted || resetByServer(this)) return;
    unanswered++;
    const now = performance.now();
    tokens = Math.min(burst, tokens + (now - updatedAt) * perMs) - 1;
    updatedAt = now;
    if (tokens >= 0) return;
    logger.warn(
      {
        address: session.socket?.remoteAddress,
        unanswered,
        opened,
        afterMs: Math.round(now - openedAt),
        unansweredResetBurst: burst,
        unansweredResetRate: limits.unansweredResetRate,
      },
      "connection dropped: too many streams reset before they were answered",
    );
    cutOff();
  }
}
