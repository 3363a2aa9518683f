import type * as http2 from "node:http2";
import type { Logger } from "pino";

/**
 * Sends an HTTP/2 PING on the session every intervalMs, and destroys the
 * session when one goes unanswered for timeoutMs: Node's server sends none by
 * itself, and without them a client that vanished without closing its TCP
 * connection would hold its username until the kernel gives up, hours later.
 * Returns a function that stops the pings.
 */
export function keepAlive(session: http2.ServerHttp2Session, intervalMs: number, timeoutMs: number, logger: Logger): () => void {
  let deadline: NodeJS.Timeout | undefined;
  const interval = setInterval(() => {
    if (deadline !== undefined || session.closed || session.destroyed) {
      return;
    }
    deadline = setTimeout(() => {
      logger.info({ timeoutMs }, "connection dropped: PING unanswered");
      session.destroy();
    }, timeoutMs);
    const sent = session.ping((err) => {
      if (err === null) {
        clearTimeout(deadline);
        deadline = undefined;
      }
    });
    if (!sent) {
      // Too many PINGs in flight already: the peer is not answering.
      clearTimeout(deadline);
      deadline = undefined;
    }
  }, intervalMs);
  return () => {
    clearInterval(interval);
    clearTimeout(deadline);
  };
}
