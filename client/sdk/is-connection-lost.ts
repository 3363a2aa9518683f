import { Code, ConnectError } from "@connectrpc/connect";
import { causeCodes } from "./cause-codes.js";

/**
 * Tells whether a call failed because its connection did, rather than
 * because the server refused or ended it: what a resumable stream should
 * resume after. A call cancelled through the given signal did not fail. Of
 * the statuses a server sends, only UNAVAILABLE asks for a retry (a server
 * going away, a proxy that lost it). Otherwise it looks for a network error
 * under the call's error (connect-node reports a reset connection as
 * ABORTED, with the socket's ECONNRESET as its cause), or a code that a
 * transport gives a failed connection.
 */
export function isConnectionLost(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return false;
  const err = ConnectError.from(error);
  if (err.isWireError) return err.code === Code.Unavailable;
  if (hasNetworkCause(error)) return true;
  return transportCodes.has(err.code);
}

/** The codes a transport gives a call whose connection failed (a refused connection, an unanswered PING, a reset stream). */
const transportCodes = new Set([Code.Unavailable, Code.Internal, Code.Canceled, Code.Unknown, Code.DeadlineExceeded]);

/** Whether an error, or one of its causes, is a socket's (ECONNRESET, EPIPE, ETIMEDOUT…) or an HTTP/2 session's. */
function hasNetworkCause(error: unknown): boolean {
  return causeCodes(error).some((code) => /^E[A-Z]+$/.test(code) || code.startsWith("ERR_HTTP2_"));
}
