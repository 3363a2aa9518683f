import * as http from "node:http";
import type { Logger } from "pino";
import type { ServerConfig } from "../ops/server-settings.js";
import { limitConnectionsPerAddress } from "./limit-connections-per-address.js";
import type { NodeHandler } from "./node-handler.js";

/**
 * Creates the server of the web port. Browsers speak HTTP/2 only over TLS,
 * so they reach the same handler (the Connect protocol and gRPC-Web over
 * HTTP/1.1), next to the chat page, on a port of their own.
 */
export function createWebServer(config: ServerConfig, handler: NodeHandler, logger: Logger): http.Server {
  const server = createHttp1Server(config, handler);
  // The web port's sockets count against the same descriptors as the gRPC
  // port's, and get the same cap (it rarely matters: browsers are few).
  server.maxConnections = config.maxConnections;
  if (config.maxConnectionsPerIp > 0) limitConnectionsPerAddress(server, config.maxConnectionsPerIp, logger);
  return server;
}

/**
 * Creates an HTTP/1.1 server with the web port's timeouts, for the web port
 * and for the HTTP/1.1 connections of a TLS gRPC port, which its TLS server
 * hands over (it never listens itself: the TLS server counts and caps its
 * connections).
 */
export function createHttp1Server(config: ServerConfig, handler: NodeHandler): http.Server {
  return http.createServer(
    {
      headersTimeout: config.webHeadersTimeoutMs,
      requestTimeout: config.webRequestTimeoutMs,
      // Node checks both timeouts this often (30 s by default), which would
      // let a slow client hold its socket well past them.
      connectionsCheckingInterval: Math.min(1000, config.webHeadersTimeoutMs),
    },
    handler,
  );
}
