import * as http from "node:http";
import type { ChatMetrics } from "./chat-metrics.js";

/** Creates the HTTP/1.1 server of /metrics, in Prometheus text format. */
export function createMetricsServer(metrics: Pick<ChatMetrics, "registry">): http.Server {
  return http.createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
}
