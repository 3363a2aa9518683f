import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { type HealthStatus, ServingStatus } from "./health-status.js";

/**
 * Creates the implementation of grpc.health.v1.Health over a HealthStatus:
 * Check answers at once, and Watch streams each change until the client
 * leaves or the server shuts down.
 */
export function createHealthService(status: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) {
        throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      }
      return { status: current };
    },

    async *watch(req, ctx) {
      // Each pass re-reads the status after waking, so a change that lands
      // while the response is being written is not lost.
      let wake: (() => void) | undefined;
      const poke = () => {
        const resolve = wake;
        wake = undefined;
        resolve?.();
      };
      const unsubscribe = status.subscribe(poke);
      ctx.signal.addEventListener("abort", poke);
      try {
        let last: ServingStatus | undefined;
        for (;;) {
          const current = status.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
          // A change is sent even when the call is ending, so that a watcher
          // learns of NOT_SERVING before its stream ends on shutdown.
          if (current !== last) {
            last = current;
            yield { status: current };
            continue;
          }
          if (ctx.signal.aborted) {
            throw ctx.signal.reason;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        unsubscribe();
        ctx.signal.removeEventListener("abort", poke);
      }
    },
  };
}
