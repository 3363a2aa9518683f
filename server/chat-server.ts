import { setMaxListeners } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type * as net from "node:net";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import type { ChatBackend } from "./core/chat-backend.js";
import { createChatHub, type ChatHub } from "./core/memory-backend.js";
import { createRedisBackend } from "./cluster/redis-backend.js";
import { ConfigError, type ServerConfig } from "./ops/config.js";
import { describeReason } from "./core/chat-error.js";
import { createHealthStatus, ServingStatus, type HealthStatus } from "./standard/health-status.js";
import { createNodeHandler } from "./transport/node-handler.js";
import { guardConnection } from "./transport/connection-guard.js";
import { defaultChatServiceOptions } from "./rpc/chat-service.js";
import { createWebPage, type WebPage } from "./transport/web-page.js";
import { createServices } from "./rpc/routes.js";
import { createChatMetrics, type ChatMetrics } from "./ops/chat-metrics.js";

/** A chat server: the HTTP/2 listener, its routes and the state behind them. */
export interface ChatServer {
  /** Where the chat's state lives: in memory, or in Redis in cluster mode. */
  readonly backend: ChatBackend;
  /**
   * The in-memory state, which tests read synchronously to check that
   * nothing is left behind. Throws in cluster mode, which has none.
   */
  readonly hub: ChatHub;
  /** The status grpc.health.v1 reports. */
  readonly health: HealthStatus;
  /** The number of open HTTP/2 connections. */
  readonly connections: number;
  /** Starts listening and resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** The address of the chat page and the browser protocols once listening, if they are on. */
  readonly webAddress: AddressInfo | undefined;
  /** The address of the /metrics endpoint once listening, if it is on. */
  readonly metricsAddress: AddressInfo | undefined;
  /**
   * Shuts down gracefully: health turns NOT_SERVING, no new connection or
   * stream is accepted, every open stream ends with UNAVAILABLE, and
   * connections still open after the grace period are destroyed. Resolves
   * once every connection is gone. Calling it again returns the same promise.
   */
  shutdown(): Promise<void>;
}

/**
 * Creates the chat server that main runs, and that the end-to-end tests run
 * the same way on a free port.
 */
export function createChatServer(config: ServerConfig, logger: Logger): ChatServer {
  const health = createHealthStatus([ChatService.typeName]);
  const limits = {
    queueLimit: config.queueLimit,
    queueLimitBytes: config.queueLimitBytes,
    maxQueuedBytes: config.maxQueuedBytes,
    maxGroupsPerUser: config.maxGroupsPerUser,
    maxGroups: config.maxGroups,
  };
  const hub = config.redis === undefined ? createChatHub(limits) : undefined;
  const cluster =
    config.redis === undefined
      ? undefined
      : createRedisBackend({
          url: config.redis,
          ...limits,
          leaseMs: config.leaseMs,
          sweepMs: config.sweepMs,
          logger,
          onAvailability: (up) => {
            if (!stopping) health.setAll(up ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
          },
        });
  const backend: ChatBackend = hub ?? cluster!;
  const metrics = createChatMetrics(backend);
  const metricsServer = config.metricsPort === undefined ? undefined : createMetricsServer(metrics);
  const shutdownController = new AbortController();
  // Every call in flight listens to this signal (the framework links it to
  // the call's own), so thousands of listeners are the normal case.
  setMaxListeners(0, shutdownController.signal);
  const sessions = new Set<http2.ServerHttp2Session>();
  let onLastSessionClosed: (() => void) | undefined;

  const handler = createNodeHandler({
    services: createServices({
      hub: backend,
      health,
      logger,
      metrics,
      chatServiceOptions: { ...defaultChatServiceOptions, stallTimeoutMs: config.stallTimeoutMs, listPageSize: config.listPageSize },
    }),
    shutdownSignal: shutdownController.signal,
    readMaxBytes: config.readMaxBytes,
    leanPath: config.leanPath,
    logger,
    metrics,
    requestBodies: { maxPendingBytes: config.maxPendingRequestBytes, timeoutMs: config.requestBodyTimeoutMs },
  });

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

  // Browsers speak HTTP/2 only over TLS, so they reach the same handler
  // (the Connect protocol and gRPC-Web over HTTP/1.1), next to the chat page,
  // on a port of their own.
  let webPage: WebPage | undefined;
  const http1 = http.createServer(
    {
      headersTimeout: config.webHeadersTimeoutMs,
      requestTimeout: config.webRequestTimeoutMs,
      // Node checks both timeouts this often (30 s by default), which would
      // let a slow client hold its socket well past them.
      connectionsCheckingInterval: Math.min(1000, config.webHeadersTimeoutMs),
    },
    (req, res) => {
      if (webPage?.serve(req, res)) return;
      handler(req, res);
    },
  );

  // Past the cap, node closes new connections at once; say so once a minute
  // at most, with how many were refused meanwhile.
  server.maxConnections = config.maxConnections;
  // The web port's sockets count against the same descriptors; each of its
  // ports gets the same cap (it rarely matters: browsers are few).
  http1.maxConnections = config.maxConnections;
  let refused = 0;
  let refusalLogged = 0;
  server.on("drop", () => {
    refused++;
    if (Date.now() - refusalLogged > 60_000) {
      logger.warn({ maxConnections: config.maxConnections, refused }, "connection limit reached: refusing new connections");
      refusalLogged = Date.now();
      refused = 0;
    }
  });

  server.on("session", (session) => {
    sessions.add(session);
    const stopPinging = keepAlive(session, config.pingIntervalMs, config.pingTimeoutMs, logger);
    const stopGuarding = guardConnection(session, config, logger);
    session.once("close", () => {
      stopPinging();
      stopGuarding();
      sessions.delete(session);
      if (sessions.size === 0) onLastSessionClosed?.();
    });
    // A session error (a protocol violation, a reset socket) ends only that
    // session; without a listener it would crash the process.
    session.on("error", (err) => logger.debug({ err }, "HTTP/2 session error"));
  });
  server.on("sessionError", (err) => logger.debug({ err }, "HTTP/2 session error"));

  let stopping: Promise<void> | undefined;

  return {
    backend,
    get hub(): ChatHub {
      if (hub === undefined) throw new Error("cluster mode keeps no in-memory hub");
      return hub;
    },
    health,
    get connections() {
      return sessions.size;
    },
    get webAddress() {
      return http1.listening ? (http1.address() as AddressInfo) : undefined;
    },
    get metricsAddress() {
      return metricsServer?.address() as AddressInfo | undefined;
    },

    async listen() {
      if (cluster !== undefined) {
        try {
          await cluster.start();
        } catch (error) {
          await cluster.close();
          throw new ConfigError(`--redis (REDIS_URL) ${redactUrl(config.redis!)}: cannot reach Redis (${describeReason(error)})`);
        }
        logger.info({ node: cluster.nodeId }, "cluster mode: registered with Redis");
      }
      try {
        if (metricsServer !== undefined) {
          const address = await listenOn(metricsServer, config.metricsPort!, config.host, "--metrics-port");
          logger.info({ host: address.address, port: address.port }, "metrics listening");
        }
        let web: string | undefined;
        if (config.webPort !== undefined) {
          webPage = await createWebPage();
          const address = await listenOn(http1, config.webPort, config.host, "--web-port");
          web = `http://${hostPort(address)}/`;
        }
        const address = await listenOn(server, config.port, config.host, "--port");
        logger.info({ host: address.address, port: address.port, ...(web ? { web } : {}) }, "server listening");
        return address;
      } catch (error) {
        // A port that cannot be had: leave Redis as if this node never came.
        metricsServer?.close();
        if (http1.listening) http1.close();
        await cluster?.close();
        throw error;
      }
    },

    shutdown() {
      stopping ??= (async () => {
        logger.info({ connections: sessions.size }, "server shutting down");
        health.setAll(ServingStatus.NOT_SERVING);
        // Ends every open handler: each stream closes with UNAVAILABLE.
        shutdownController.abort(new ConnectError("the server is shutting down", Code.Unavailable));
        const serverClosed = Promise.all([
          new Promise<void>((resolve) => server.close(() => resolve())),
          new Promise<void>((resolve) => (http1.listening ? http1.close(() => resolve()) : resolve())),
        ]);
        http1.closeIdleConnections();
        // The server's callback can come before the sessions' own close events.
        const sessionsClosed = new Promise<void>((resolve) => {
          onLastSessionClosed = resolve;
          if (sessions.size === 0) resolve();
        });
        const closed = Promise.all([serverClosed, sessionsClosed]);
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        // GOAWAY: connections finish the streams they have, and open no more.
        for (const session of sessions) {
          session.close();
        }
        const deadline = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), config.shutdownGraceMs).unref());
        if (!(await Promise.race([closed.then(() => true), deadline]))) {
          logger.warn({ connections: sessions.size }, "grace period over: destroying the connections left");
          for (const session of sessions) {
            session.destroy();
          }
          http1.closeAllConnections();
          await closed;
        }
        await cluster?.close();
        logger.info("server stopped");
      })();
      return stopping;
    },
  };
}

/**
 * Listens on a port and resolves with the bound address. A port that cannot
 * be had rejects with a ConfigError naming the flag and the address.
 */
function listenOn(server: net.Server, port: number, host: string, flag: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
      // The flag, and the variable that sets it too: either may be how the value came.
      const named = `${flag} (${flag.slice(2).toUpperCase().replaceAll("-", "_")}) ${port}`;
      const messages: Record<string, string> = {
        EADDRINUSE: `${named}: ${where} is already in use`,
        EACCES: `${named}: no permission to listen on ${where}`,
        EADDRNOTAVAIL: `--host (HOST) ${host}: not an address of this machine`,
        ENOTFOUND: `--host (HOST) ${host}: no such host`,
      };
      reject(new ConfigError(messages[error.code ?? ""] ?? `${named}: cannot listen on ${where} (${error.message})`));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** An address as host:port, with brackets around an IPv6 host. */
export function hostPort(address: AddressInfo): string {
  return `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
}

/** A URL without its password, for messages. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== "") parsed.password = "***";
  return parsed.toString().replace(/\/$/, "");
}


/**
 * Creates the HTTP/1.1 server of /metrics, in Prometheus text format.
 */
function createMetricsServer(metrics: ChatMetrics): http.Server {
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

/**
 * Sends an HTTP/2 PING on the session every intervalMs, and destroys the
 * session when one goes unanswered for timeoutMs: Node's server sends none by
 * itself, and without them a client that vanished without closing its TCP
 * connection would hold its username until the kernel gives up, hours later.
 * Returns a function that stops the pings.
 */
function keepAlive(session: http2.ServerHttp2Session, intervalMs: number, timeoutMs: number, logger: Logger): () => void {
  let deadline: NodeJS.Timeout | undefined;
  const interval = setInterval(() => {
    if (deadline !== undefined || session.closed || session.destroyed) {
      return;
    }
    deadline = setTimeout(() => {
      logger.info({ timeoutMs }, "connection dropped: PING unanswered");
      session.destroy();
    }, timeoutMs);
    const sent = session.ping((err) => {
      if (err === null) {
        clearTimeout(deadline);
        deadline = undefined;
      }
    });
    if (!sent) {
      // Too many PINGs in flight already: the peer is not answering.
      clearTimeout(deadline);
      deadline = undefined;
    }
  }, intervalMs);
  return () => {
    clearInterval(interval);
    clearTimeout(deadline);
  };
}
