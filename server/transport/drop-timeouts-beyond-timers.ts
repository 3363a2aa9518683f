import type * as http from "node:http";
import type * as http2 from "node:http2";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";

/**
 * The longest delay a Node timer takes: a longer one overflows to 1 ms
 * (TimeoutOverflowWarning), which would end a stream at once.
 */
export const longestTimerMs = 2 ** 31 - 1;

/**
 * Removes a deadline too far away for a timer (about 24.8 days), in either
 * protocol's header, before Connect or the lean path reads it: Connect would
 * set a timer that fires at once (see docs/upstream.md). A call that asks for
 * a month gets no deadline at all, which is what it meant in practice.
 */
export function dropTimeoutsBeyondTimers(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): void {
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string" && (parseTimeout(grpc, Number.MAX_SAFE_INTEGER).timeoutMs ?? 0) > longestTimerMs) {
    delete headers["grpc-timeout"];
  }
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > longestTimerMs) {
    delete headers["connect-timeout-ms"];
  }
}
