import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError, type ConnectRouter, createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { clientAddressKey, droppedKey, hardCloseKey } from "../rpc/context-keys.js";
import { addressKey } from "./address-key.js";
import { dropTimeoutsBeyondTimers } from "./drop-timeouts-beyond-timers.js";
import { createGrpcLeanPath } from "./grpc-lean-path.js";
import { connectionGone, hardClose } from "./hard-close.js";
import { createRequestBodyGuard, type RequestBodyLimits } from "./request-body-guard.js";
import { createRouteTable, type Route } from "./route-table.js";

/** Settings of {@link createNodeHandler}. */
export interface NodeHandlerOptions {
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

/** A request listener for node:http2 and node:http. */
export type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * Creates the request listener that serves the routes. It does what
 * connectNodeAdapter from @connectrpc/connect-node does, and is kept here
 * rather than built on it for three reasons: plain gRPC calls take the lean
 * path of grpc-lean-path.ts, which must hand Connect the request bytes it
 * has already read when it cannot serve a call (the adapter builds its
 * request from the socket alone); each call gets a way to close its
 * transport as a context value; and a response that could not be written
 * (the client went away mid-stream, an everyday event here) is logged at
 * debug level through the server's logger, where the adapter writes every
 * one to console.error.
 */
export function createNodeHandler(options: NodeHandlerOptions): NodeHandler {
  const { logger, metrics } = options;
  // One set of router options, so that Connect and the lean path apply the
  // same codecs, limits and signals.
  const routerOptions = {
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.readMaxBytes,
  };
  const table = createRouteTable(options.routes, routerOptions);
  const leanPath =
    options.leanPath === false
      ? undefined
      : createGrpcLeanPath(routerOptions, {
          served: () => metrics?.leanPathCall(),
          writeFailed: (rpc, err) => logger.warn({ rpc, err }, "response not written; stream reset"),
        });
  const guardBody = options.requestBodies === undefined ? undefined : createRequestBodyGuard(options.requestBodies, logger);

  const viaConnect = (
    route: Route,
    req: Parameters<NodeHandler>[0],
    res: Parameters<NodeHandler>[1],
    values: ReturnType<typeof createContextValues>,
    consumed: Buffer[],
  ) => {
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    if (consumed.length > 0) {
      uReq.body = prepend(consumed, uReq.body as AsyncIterable<Uint8Array>);
    }
    route
      .handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        const err = ConnectError.from(reason);
        if (err.code !== Code.Aborted) {
          logger.debug({ rpc: route.handler.method.name, err: err.message }, "response not written in full");
        }
      });
  };

  return (req, res) => {
    // A stream already closed when it gets here (refused on a connection
    // being cut off for rapid resets, see limit-unanswered-resets.ts, or
    // reset by its client before the server got to it) wants no answer:
    // no handler runs for it.
    if ("stream" in req && req.stream.closed) return;
    const route = table.get(req.url?.split("?", 2)[0] ?? "");
    if (route === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    dropTimeoutsBeyondTimers(req.headers);
    if ("stream" in req && guardBody !== undefined && route.lean !== undefined) {
      guardBody(req);
    }
    const values = createContextValues().set(hardCloseKey, hardClose(req, res)).set(clientAddressKey, addressKey(req.socket.remoteAddress));
    // Only a stream's end may be a drop worth a resume: unary calls carry no watch.
    if (route.handler.method.methodKind === "server_streaming") values.set(droppedKey, connectionGone(req));
    const fallback = (consumed: Buffer[] = []) => viaConnect(route, req, res, values, consumed);
    if ("stream" in req && route.lean !== undefined && leanPath?.(route.lean, req, res as http2.Http2ServerResponse, values, fallback)) {
      return;
    }
    fallback();
  };
}

async function* prepend(first: Buffer[], rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield* first;
  yield* rest;
}
