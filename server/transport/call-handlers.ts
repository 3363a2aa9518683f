import type { ConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { streamCallValues } from "./call-values.js";
import type { LeanMethod } from "./lean/lean-method.js";
import { createLeanPath, type LeanPath } from "./lean/lean-path.js";
import { createNodeHandler, type NodeHandler } from "./node-handler.js";
import { createRequestBodyGuard, type RequestBodyLimits } from "./request-body-guard.js";
import { createRouteTable } from "./route-table.js";

/** Settings of {@link createCallHandlers}. */
export interface CallHandlersOptions {
  routes: (router: ConnectRouter) => void;
  /** Aborting it ends every handler; abort it with a ConnectError to pick the status. */
  shutdownSignal: AbortSignal;
  /** The largest request message accepted, after decompression. */
  readMaxBytes: number;
  /**
   * Whether plain gRPC calls may take the lean path (the default). Off, every
   * call goes through Connect's handler: the parity tests compare the two.
   */
  leanPath?: boolean;
  logger: Logger;
  /** Counts the calls that the lean path serves. */
  metrics?: Pick<ChatMetrics, "leanPathCall">;
  /** Bounds the bodies of single-message requests on HTTP/2; none when undefined. */
  requestBodies?: RequestBodyLimits;
}

/** The two ways the routes are served. */
export interface CallHandlers {
  /** Serves requests through Connect's handlers, for node:http and node:http2's compatibility API. */
  request: NodeHandler;
  /** Serves plain gRPC calls straight from their HTTP/2 streams; undefined when switched off. */
  lean: LeanPath | undefined;
}

/**
 * Registers the routes once and creates both ways of serving them, with the
 * same codecs, limits, signals and body guard, so that a call gets the same
 * answer whichever serves it.
 */
export function createCallHandlers(options: CallHandlersOptions): CallHandlers {
  const { logger, metrics } = options;
  const routerOptions = {
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.readMaxBytes,
  };
  const table = createRouteTable(options.routes, routerOptions);
  const bodyGuard = options.requestBodies === undefined ? undefined : createRequestBodyGuard(options.requestBodies, logger);
  const request = createNodeHandler(table, { logger, ...(bodyGuard === undefined ? {} : { bodyGuard }) });
  if (options.leanPath === false) return { request, lean: undefined };
  const methods = new Map<string, LeanMethod>();
  for (const [path, route] of table) if (route.lean !== undefined) methods.set(path, route.lean);
  const lean = createLeanPath(methods, {
    ...routerOptions,
    ...(bodyGuard === undefined ? {} : { bodyGuard }),
    contextValues: streamCallValues,
    served: () => metrics?.leanPathCall(),
    writeFailed: (rpc, err) => logger.warn({ rpc, err }, "response not written; stream reset"),
  });
  return { request, lean };
}
