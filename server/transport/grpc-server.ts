import * as http2 from "node:http2";
import type { Logger } from "pino";
import type { ServerConfig } from "../ops/config.js";
import { guardConnection } from "./connection-guard.js";
import { keepAlive } from "./keep-alive.js";
import type { NodeHandler } from "./node-handler.js";

/** The HTTP/2 listener and the connections it holds. */
export interface GrpcServer {
  readonly server: http2.Http2Server;
  /** The open connections. */
  readonly sessions: ReadonlySet<http2.ServerHttp2Session>;
  /** Resolves once no connection is open (at once when none is). */
  allClosed(): Promise<void>;
}

/**
 * Creates the cleartext HTTP/2 server of the gRPC port: its settings and
 * limits, and, on every connection, the PING keep-alive and the guards
 * against clients that hold resources without using them.
 */
export function createGrpcServer(config: ServerConfig, handler: NodeHandler, logger: Logger): GrpcServer {
  const sessions = new Set<http2.ServerHttp2Session>();
  let onLastClosed: (() => void) | undefined;
  const server = http2.createServer(
    {
      maxSessionMemory: config.maxSessionMemoryMb,
      // Chat requests are small; a client with more headers than this is
      // not one of ours.
      maxHeaderListPairs: 64,
      settings: {
        maxConcurrentStreams: config.maxConcurrentStreams,
        maxHeaderListSize: 16 * 1024,
      },
    },
    handler,
  );
  server.maxConnections = config.maxConnections;
  logRefusals(server, config.maxConnections, logger);
  server.on("session", (session) => {
    sessions.add(session);
    const stopPinging = keepAlive(session, config.pingIntervalMs, config.pingTimeoutMs, logger);
    const stopGuarding = guardConnection(session, config, logger);
    session.once("close", () => {
      stopPinging();
      stopGuarding();
      sessions.delete(session);
      if (sessions.size === 0) onLastClosed?.();
    });
    // A session error (a protocol violation, a reset socket) ends only that
    // session; without a listener it would crash the process.
    session.on("error", (err) => logger.debug({ err }, "HTTP/2 session error"));
  });
  server.on("sessionError", (err) => logger.debug({ err }, "HTTP/2 session error"));
  return {
    server,
    sessions,
    allClosed: () =>
      new Promise<void>((resolve) => {
        onLastClosed = resolve;
        if (sessions.size === 0) resolve();
      }),
  };
}

/**
 * Past maxConnections, node closes new connections at once; says so once a
 * minute at most, with how many were refused meanwhile.
 */
function logRefusals(server: http2.Http2Server, maxConnections: number, logger: Logger): void {
  let refused = 0;
  let refusalLogged = 0;
  server.on("drop", () => {
    refused++;
    if (Date.now() - refusalLogged > 60_000) {
      logger.warn({ maxConnections, refused }, "connection limit reached: refusing new connections");
      refusalLogged = Date.now();
      refused = 0;
    }
  });
}
