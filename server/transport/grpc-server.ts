import type * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import type { Logger } from "pino";
import type { ServerConfig } from "../ops/server-settings.js";
import { guardConnection } from "./connection-guard.js";
import { keepAlive } from "./keep-alive.js";
import { limitConnectionsPerAddress } from "./limit-connections-per-address.js";
import { limitUnansweredResets } from "./limit-unanswered-resets.js";
import type { NodeHandler } from "./node-handler.js";
import type { StreamListener } from "./stream-listener.js";
import type { TlsFiles } from "./tls-files.js";
import { createHttp1Server } from "./web-server.js";

/** The HTTP/2 listener and the connections it holds. */
export interface GrpcServer {
  /** What listens on the port: the HTTP/2 server, or with TLS the TLS server in front of it. */
  readonly listener: net.Server;
  /** With TLS, the server of the port's HTTP/1.1 connections (browsers that do not offer h2). */
  readonly http1: http.Server | undefined;
  /** Whether the port serves TLS. */
  readonly secure: boolean;
  /** Replaces the certificate and key of a TLS port for new connections. */
  setTls(files: TlsFiles): void;
  /** The open connections. */
  readonly sessions: ReadonlySet<http2.ServerHttp2Session>;
  /** Resolves once no connection is open (at once when none is). */
  allClosed(): Promise<void>;
}

/** What a TLS port serves to the clients that negotiate HTTP/1.1. */
export interface TlsPort {
  files: TlsFiles;
  /** The handler of its HTTP/1.1 requests: browsers' page, Connect protocol and gRPC-Web. */
  http1: NodeHandler;
}

/**
 * Creates the HTTP/2 server of the gRPC port: its settings and limits, and,
 * on every connection, the PING keep-alive and the guards against clients
 * that hold resources without using them. Its streams go to onStream, with
 * no compatibility-layer objects unless onStream builds them. With TLS, ALPN
 * lets the same port serve HTTP/1.1 too, so that browsers reach the chat
 * page, the Connect protocol and gRPC-Web there: a TLS server hands each
 * connection, once its handshake has chosen, to the HTTP/2 server (h2) or to
 * an HTTP/1.1 server (anything else). node's own way, createSecureServer with
 * allowHTTP1, needs a "request" listener for HTTP/1.1, and that listener puts
 * every HTTP/2 stream through the compatibility layer too.
 */
export function createGrpcServer(config: ServerConfig, onStream: StreamListener, logger: Logger, tlsPort?: TlsPort): GrpcServer {
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
  const server = http2.createServer(options);
  server.on("stream", onStream);
  const http1 = tlsPort === undefined ? undefined : createHttp1Server(config, tlsPort.http1);
  const secureListener =
    tlsPort === undefined || http1 === undefined ? undefined : createTlsListener(tlsPort.files, config.settingsTimeoutMs, server, http1, logger);
  const listener = secureListener ?? server;
  listener.maxConnections = config.maxConnections;
  logRefusals(listener, config.maxConnections, logger);
  if (config.maxConnectionsPerIp > 0) limitConnectionsPerAddress(listener, config.maxConnectionsPerIp, logger);
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
  return {
    listener,
    http1,
    secure: tlsPort !== undefined,
    setTls(files) {
      secureListener?.setSecureContext(files);
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
function logRefusals(server: net.Server, maxConnections: number, logger: Logger): void {
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

/**
 * The TLS server of a secure port: it offers h2 and http/1.1 by ALPN, and
 * hands each connection, once its handshake is done, to the server of the
 * protocol chosen. A client that offers no ALPN gets HTTP/1.1, as with
 * node's allowHTTP1. A client gets handshakeTimeoutMs to finish its
 * handshake: until then there is no HTTP/2 session, whose SETTINGS timer
 * drops a silent client on the cleartext port, and node's default of 120 s
 * would let clients that send nothing hold places among --max-connections
 * for two minutes each.
 */
function createTlsListener(files: TlsFiles, handshakeTimeoutMs: number, h2: http2.Http2Server, http1: http.Server, logger: Logger): tls.Server {
  const listener = tls.createServer({ ...files, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: handshakeTimeoutMs });
  // Node starts checking the header and request timeouts of an HTTP/1.1
  // server's connections when that server listens; this one never does, and
  // would never time out a slow client (docs/upstream.md).
  http1.emit("listening");
  listener.on("secureConnection", (socket) => {
    if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
    else http1.emit("connection", socket);
  });
  // A handshake that fails (a client that does not trust us, a port
  // scanner, one that timed out) ends that socket alone. A tls.Server does
  // not close the socket of a handshake that timed out (node only reports
  // it here), so this does: without it, a client that sends nothing holds
  // its connection for ever.
  listener.on("tlsClientError", (err, socket) => {
    logger.debug({ err: err.message }, "TLS handshake failed");
    socket.destroy();
  });
  return listener;
}
