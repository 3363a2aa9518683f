import * as http2 from "node:http2";
import type { Logger } from "pino";
import type { ServerConfig } from "../ops/server-settings.js";
import { guardConnection } from "./connection-guard.js";
import { keepAlive } from "./keep-alive.js";
import { limitConnectionsPerAddress } from "./limit-connections-per-address.js";
import { limitUnansweredResets } from "./limit-unanswered-resets.js";
import type { NodeHandler } from "./node-handler.js";
import type { TlsFiles } from "./tls-files.js";

/** The HTTP/2 listener and the connections it holds. */
export interface GrpcServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  /** Whether the port serves TLS. */
  readonly secure: boolean;
  /** Replaces the certificate and key of a TLS port for new connections. */
  setTls(files: TlsFiles): void;
  /** The open connections. */
  readonly sessions: ReadonlySet<http2.ServerHttp2Session>;
  /** Resolves once no connection is open (at once when none is). */
  allClosed(): Promise<void>;
}

/**
 * Creates the HTTP/2 server of the gRPC port: its settings and limits, and,
 * on every connection, the PING keep-alive and the guards against clients
 * that hold resources without using them. With TLS, ALPN lets the same port
 * serve HTTP/1.1 too, so that browsers reach the chat page, the Connect
 * protocol and gRPC-Web there.
 */
export function createGrpcServer(config: ServerConfig, handler: NodeHandler, logger: Logger, tls?: TlsFiles): GrpcServer {
  const sessions = new Set<http2.ServerHttp2Session>();
  let onLastClosed: (() => void) | undefined;
  const options: http2.ServerOptions = {
    maxSessionMemory: config.maxSessionMemoryMb,
    // Chat requests are small; a client with more headers than this is
    // not one of ours.
    maxHeaderListPairs: 64,
    // nghttp2 counts every RST_STREAM received, a served stream's
    // cancellation included, and closes the connection past 1,000 at once
    // and 33 a second by default: a gateway whose users come and go would
    // lose its connection every few minutes. Raised to a backstop here; the
    // rapid-reset attack is caught by limitUnansweredResets. Node applies
    // the two only together (docs/upstream.md, report 7).
    streamResetBurst: config.streamResetBurst,
    streamResetRate: config.streamResetRate,
    settings: {
      maxConcurrentStreams: config.maxConcurrentStreams,
      maxHeaderListSize: 16 * 1024,
    },
  };
  // The TLS server is kept under its own type for setTls: @types/node 26
  // reduces the union of the two server types to the plain one, so that
  // narrowing the union no longer finds setSecureContext.
  const secureServer = tls === undefined ? undefined : http2.createSecureServer({ ...options, ...tls, allowHTTP1: true }, handler);
  const server = secureServer ?? http2.createServer(options, handler);
  server.maxConnections = config.maxConnections;
  logRefusals(server, config.maxConnections, logger);
  if (config.maxConnectionsPerIp > 0) limitConnectionsPerAddress(server, config.maxConnectionsPerIp, logger);
  server.on("session", (session) => {
    sessions.add(session);
    const stopPinging = keepAlive(session, config.pingIntervalMs, config.pingTimeoutMs, logger);
    const stopGuarding = guardConnection(session, config, logger);
    limitUnansweredResets(session, config, logger);
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
  if (tls !== undefined) {
    // A handshake that fails (a client that does not trust us, a port
    // scanner) ends that socket alone.
    server.on("tlsClientError", (err) => logger.debug({ err: err.message }, "TLS handshake failed"));
  }
  return {
    server,
    secure: tls !== undefined,
    setTls(files) {
      secureServer?.setSecureContext(files);
    },
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
