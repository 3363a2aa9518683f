import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { toConnectError } from "./error-interceptor.js";
import { observeStream, type StreamObserver } from "./observe-stream.js";

/**
 * Creates the interceptor that counts calls and times them, by method and
 * status code: a unary call when it returns, a stream when it ends.
 */
export function createMetricsInterceptor(metrics: Pick<ChatMetrics, "callEnded">): Interceptor {
  const streams: StreamObserver = {
    end: (call, reason) =>
      metrics.callEnded(
        call.method.name,
        reason === undefined ? "OK" : ConnectError.from(toConnectError(reason)).code,
        (performance.now() - call.startedAt) / 1000,
      ),
  };
  return (next) => async (req) => {
    const start = performance.now();
    const seconds = () => (performance.now() - start) / 1000;
    try {
      const res = await next(req);
      if (req.stream && res.stream) return observeStream(req, res, streams);
      metrics.callEnded(req.method.name, "OK", seconds());
      return res;
    } catch (error) {
      metrics.callEnded(req.method.name, ConnectError.from(error).code, seconds());
      throw error;
    }
  };
}
