import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { toConnectError } from "./error-interceptor.js";
import { observeStream } from "./stream-end.js";

/**
 * Creates the interceptor that counts calls and times them, by method and
 * status code: a unary call when it returns, a stream when it ends.
 */
export function createMetricsInterceptor(metrics: Pick<ChatMetrics, "callEnded">): Interceptor {
  return (next) => async (req) => {
    const start = performance.now();
    const seconds = () => (performance.now() - start) / 1000;
    try {
      const res = await next(req);
      if (req.stream && res.stream) {
        return observeStream(req, res, {
          end: (reason) => metrics.callEnded(req.method.name, reason === undefined ? "OK" : ConnectError.from(toConnectError(reason)).code, seconds()),
        });
      }
      metrics.callEnded(req.method.name, "OK", seconds());
      return res;
    } catch (error) {
      metrics.callEnded(req.method.name, ConnectError.from(error).code, seconds());
      throw error;
    }
  };
}
