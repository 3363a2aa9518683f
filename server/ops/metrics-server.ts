import * as http from "node:http";
import type { ChatMetrics } from "./chat-metrics.js";

/** What the probes of the metrics port report on. */
export interface Readiness {
  /**
   * Whether the server accepts sessions now; the reason it does not
   * otherwise (draining, the shared state unreachable).
   */
  ready(): { ready: true } | { ready: false; reason: string };
}

/**
 * Creates the HTTP/1.1 server of the metrics port: /metrics in Prometheus
 * text format, and the two probes that orchestrators and load balancers
 * speak, since they probe HTTP and not gRPC. /healthz answers 200 while the
 * process can answer at all (a liveness probe restarts it otherwise);
 * /readyz answers 200 while the server accepts sessions and 503, with the
 * reason, while it does not, so that traffic goes elsewhere without the
 * process being restarted.
 */
export function createMetricsServer(metrics: Pick<ChatMetrics, "registry">, readiness: Readiness): http.Server {
  return http.createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(path === "/metrics" || path === "/healthz" || path === "/readyz" ? 405 : 404, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/healthz":
        plain(res, 200, "ok\n");
        return;
      case "/readyz": {
        const state = readiness.ready();
        if (state.ready) plain(res, 200, "ready\n");
        else plain(res, 503, `not ready: ${state.reason}\n`);
        return;
      }
      case "/metrics":
        metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
          (err: unknown) => plain(res, 500, `${String(err)}\n`),
        );
        return;
      default:
        res.writeHead(404).end();
    }
  });
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  // A probe's answer is about now: no cache may keep it.
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(text);
}
