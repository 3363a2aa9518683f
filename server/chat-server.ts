import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import type { ChatBackend } from "./core/chat-backend.js";
import { type BackendLifecycle, createBackend } from "./create-backend.js";
import { createTokenVerifierFromConfig } from "./create-token-verifier.js";
import { type ChatMetrics, createChatMetrics } from "./ops/chat-metrics.js";
import { createMetricsServer } from "./ops/metrics-server.js";
import { type ServerConfig, settingFlag } from "./ops/server-settings.js";
import { defaultChatServiceOptions } from "./rpc/chat-service.js";
import { createRoutes, type RoutesDeps } from "./rpc/routes.js";
import { createHealthStatus, type HealthStatus, ServingStatus } from "./standard/health-status.js";
import { createCallHandlers } from "./transport/call-handlers.js";
import { closeGracefully } from "./transport/close-gracefully.js";
import { createGrpcServer, type GrpcServer } from "./transport/grpc-server.js";
import { boundAddress, hostPort, listenOn } from "./transport/listen-on.js";
import { createShutdownSignal } from "./transport/shutdown-signal.js";
import { createStreamListener } from "./transport/stream-listener.js";
import { readTlsFiles } from "./transport/tls-files.js";
import { createWebGuard } from "./transport/web-guard.js";
import { createSiteHandler, createWebPage, type SiteHandler } from "./transport/web-page.js";
import { createWebServer } from "./transport/web-server.js";

/** A chat server: its listeners, its routes and the state behind them. */
export interface ChatServer {
  /** Where the chat's state lives: in memory, or in Redis in cluster mode. */
  readonly backend: ChatBackend;
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
   * Reads the TLS certificate and key files again and serves them to new
   * connections. Returns false when the server has no TLS; throws a
   * ConfigError, keeping the certificate in use, when the files are not
   * usable.
   */
  reloadTls(): boolean;
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
  let stopping: Promise<void> | undefined;
  const state = createBackend(config, logger, (up) => {
    if (!stopping) health.setAll(up ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  });
  const metrics = createChatMetrics(state.backend);
  const metricsServer =
    config.metricsPort === undefined
      ? undefined
      : createMetricsServer(metrics, {
          ready() {
            if (stopping !== undefined) return { ready: false, reason: "the server is draining" };
            if (!grpc.listener.listening) return { ready: false, reason: "the server is starting" };
            if (health.get("") !== ServingStatus.SERVING) return { ready: false, reason: "the shared state (Redis) is unreachable" };
            return { ready: true };
          },
        });
  // Every call in flight listens to this signal (the framework links it to
  // the call's own), so thousands of listeners are the normal case.
  const shutdownController = createShutdownSignal();
  const calls = createCallHandlers({
    routes: createRoutes(routesDeps(config, state, health, logger, metrics)),
    shutdownSignal: shutdownController.signal,
    readMaxBytes: config.readMaxBytes,
    leanPath: config.leanPath,
    logger,
    metrics,
    requestBodies: { maxPendingBytes: config.maxPendingRequestBytes, timeoutMs: config.requestBodyTimeoutMs },
  });
  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined ? readTlsFiles(config.tlsCert, config.tlsKey) : undefined;
  // With TLS, browsers reach the gRPC port too (HTTP/2 or HTTP/1.1 by ALPN):
  // it serves the page as the web port does, and what the lean path does
  // not take goes through the same guard.
  const site = createSiteHandler(calls.request);
  const tlsGuarded = tls === undefined ? undefined : createWebGuard(site.handle, { origins: config.webOrigin, hosts: undefined });
  const grpc = createGrpcServer(
    config,
    createStreamListener(calls.lean, tlsGuarded ?? calls.request, (err) => logger.warn({ err }, "stream reset: serving it failed")),
    logger,
    tls === undefined || tlsGuarded === undefined ? undefined : { files: tls, http1: tlsGuarded },
  );
  const web = createWebServer(config, createWebGuard(site.handle, { origins: config.webOrigin, hosts: config.webHost }), logger);

  return {
    backend: state.backend,
    health,
    get connections() {
      return grpc.sessions.size;
    },
    get webAddress() {
      return web.listening ? boundAddress(web) : undefined;
    },
    get metricsAddress() {
      return metricsServer?.listening ? boundAddress(metricsServer) : undefined;
    },

    listen: () => listenAll({ config, logger, state, grpc, web, site, metricsServer }),

    reloadTls() {
      if (config.tlsCert === undefined || config.tlsKey === undefined) return false;
      grpc.setTls(readTlsFiles(config.tlsCert, config.tlsKey));
      logger.info({ cert: config.tlsCert }, "TLS certificate reloaded");
      return true;
    },

    shutdown() {
      stopping ??= (async () => {
        logger.info({ connections: grpc.sessions.size }, "server shutting down");
        health.setAll(ServingStatus.NOT_SERVING);
        // Ends every open handler: each stream closes with UNAVAILABLE.
        shutdownController.abort(new ConnectError("the server is shutting down", Code.Unavailable));
        // The probes stay up through the drain, so that /readyz says so.
        await closeGracefully(grpc, web, config.shutdownGraceMs, logger);
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        await state.close();
        logger.info("server stopped");
      })();
      return stopping;
    },
  };
}

/** What the routes are built on, from the configuration. */
function routesDeps(config: ServerConfig, state: BackendLifecycle, health: HealthStatus, logger: Logger, metrics: ChatMetrics): RoutesDeps {
  const tokens = createTokenVerifierFromConfig(config);
  const limited = config.sendRate > 0 || config.connectRatePerIp > 0;
  return {
    backend: state.backend,
    health,
    logger,
    metrics,
    chatServiceOptions: { ...defaultChatServiceOptions, stallTimeoutMs: config.stallTimeoutMs, listPageSize: config.listPageSize },
    ...(tokens === undefined ? {} : { tokens, tokenFailuresPerIp: config.tokenFailuresPerIp }),
    ...(limited
      ? {
          rateLimits: {
            sendRate: config.sendRate,
            sendBurst: config.sendBurst,
            connectRate: config.connectRatePerIp,
            ...(state.store === undefined ? {} : { store: state.store }),
          },
        }
      : {}),
  };
}

/** The listeners of a server, and what they serve. */
interface Listeners {
  config: ServerConfig;
  logger: Logger;
  state: BackendLifecycle;
  grpc: GrpcServer;
  web: http.Server;
  site: SiteHandler;
  metricsServer: http.Server | undefined;
}

/**
 * Starts the backend, then the metrics port, the web port and last the gRPC
 * port, so that the server is ready when its port answers. A port that
 * cannot be had closes what was opened and leaves Redis as if this node
 * never came. With --reuse-port the web and gRPC ports are shared with the
 * other processes that give it; the metrics port never is.
 */
async function listenAll({ config, logger, state, grpc, web, site, metricsServer }: Listeners): Promise<AddressInfo> {
  const node = await state.start();
  if (node !== undefined) logger.info({ node }, "cluster mode: registered with Redis");
  const shared = { reusePort: config.reusePort };
  if (config.reusePort && config.redis === undefined) {
    // Legal (a test, a quick look), but each process then holds users of
    // its own: two users whose connections reach different processes never meet.
    logger.warn(`${settingFlag("reusePort")} without ${settingFlag("redis")}: the processes sharing this port share no state`);
  }
  try {
    if (metricsServer !== undefined && config.metricsPort !== undefined) {
      // Never shared (no reusePort): a scrape or a probe must reach the one
      // process its port names, not whichever the kernel picks.
      const address = await listenOn(metricsServer, config.metricsPort, config.host, "metricsPort");
      logger.info({ host: address.address, port: address.port }, "metrics listening");
    }
    let cleartextPage: string | undefined;
    if (config.webPort !== undefined || grpc.secure) site.setPage(await createWebPage());
    if (config.webPort !== undefined) {
      cleartextPage = `http://${hostPort(await listenOn(web, config.webPort, config.host, "webPort", shared))}/`;
    }
    const address = await listenOn(grpc.listener, config.port, config.host, "port", shared);
    // The line names every port that answers: with TLS the page is on the
    // gRPC port, and the cleartext web port stays open unless --no-web.
    const page = grpc.secure ? `https://${hostPort(address)}/` : cleartextPage;
    const cleartextWeb = grpc.secure && cleartextPage !== undefined ? { cleartextWeb: cleartextPage } : {};
    logger.info(
      { host: address.address, port: address.port, pid: process.pid, ...(grpc.secure ? { tls: true } : {}), ...(page ? { web: page } : {}), ...cleartextWeb },
      "server listening",
    );
    return address;
  } catch (error) {
    metricsServer?.close();
    if (web.listening) web.close();
    await state.close();
    throw error;
  }
}
