import * as http from "node:http";
import type { ServerConfig } from "../ops/config.js";
import type { NodeHandler } from "./node-handler.js";
import type { WebPage } from "./web-page.js";

/** The HTTP/1.1 server of the web port. */
export interface WebServer {
  readonly server: http.Server;
  /** Serves the chat page from now on, beside the RPC routes. */
  servePage(page: WebPage): void;
}

/**
 * Creates the server of the web port. Browsers speak HTTP/2 only over TLS,
 * so they reach the same handler (the Connect protocol and gRPC-Web over
 * HTTP/1.1), next to the chat page, on a port of their own.
 */
export function createWebServer(config: ServerConfig, handler: NodeHandler): WebServer {
  let page: WebPage | undefined;
  const server = http.createServer(
    {
      headersTimeout: config.webHeadersTimeoutMs,
      requestTimeout: config.webRequestTimeoutMs,
      // Node checks both timeouts this often (30 s by default), which would
      // let a slow client hold its socket well past them.
      connectionsCheckingInterval: Math.min(1000, config.webHeadersTimeoutMs),
    },
    (req, res) => {
      if (page?.serve(req, res)) return;
      handler(req, res);
    },
  );
  // The web port's sockets count against the same descriptors as the gRPC
  // port's, and get the same cap (it rarely matters: browsers are few).
  server.maxConnections = config.maxConnections;
  return {
    server,
    servePage(value) {
      page = value;
    },
  };
}
