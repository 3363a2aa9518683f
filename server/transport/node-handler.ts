import type * as http from "node:http";
import { constants as http2constants } from "node:http2";
import type * as http2 from "node:http2";
import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { createGrpcLeanPath } from "./grpc-lean-path.js";
import { hardCloseKey } from "./hard-close.js";
import { createRequestBodyGuard, type RequestBodyLimits } from "./request-body-guard.js";
import { routesOf, type ServiceRegistration } from "../rpc/routes.js";
import type { ChatMetrics } from "../ops/chat-metrics.js";

/** Settings of {@link createNodeHandler}. */
export interface NodeHandlerOptions {
  services: readonly ServiceRegistration[];
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

/**
 * Creates the request listener for node:http2 (and node:http) that serves the
 * routes. It does what connectNodeAdapter from @connectrpc/connect-node does,
 * with two differences that matter for a chat server: each call gets its
 * HTTP/2 stream as a context value, and a response that could not be written
 * (the client went away mid-stream, an everyday event here) is logged at
 * debug level through the server's logger, not with console.error. Unary
 * and server-streaming gRPC calls take the lean path of grpc-lean-path.ts
 * when they can.
 */
export function createNodeHandler(options: NodeHandlerOptions): (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void {
  const { logger, metrics } = options;
  // One set of router options, so that Connect and the lean path apply the
  // same codecs, limits and signals.
  const routerOptions = {
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: options.shutdownSignal,
    readMaxBytes: options.readMaxBytes,
  };
  const router = createConnectRouter(routerOptions);
  routesOf(options.services)(router);
  const leanPath =
    options.leanPath === false
      ? () => false
      : createGrpcLeanPath(options.services, routerOptions, {
          served: () => metrics?.leanPathCall(),
          writeFailed: (rpc, err) => logger.warn({ rpc, err }, "response not written; stream reset"),
        });
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) {
    paths.set(handler.requestPath, handler);
  }
  const guardBody = options.requestBodies === undefined ? undefined : createRequestBodyGuard(options.requestBodies, logger);
  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (handler === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    dropTimeoutsBeyondTimers(req.headers);
    if ("stream" in req && guardBody !== undefined && (handler.method.methodKind === "unary" || handler.method.methodKind === "server_streaming")) {
      guardBody(req.stream);
    }
    const values = createContextValues().set(hardCloseKey, hardClose(req, res));
    const viaConnect = (consumed: Buffer[] = []) => {
      const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
      if (consumed.length > 0) {
        uReq.body = prepend(consumed, uReq.body as AsyncIterable<Uint8Array>);
      }
      serve(handler, uReq, res);
    };
    if ("stream" in req && leanPath(req, res as http2.Http2ServerResponse, values, viaConnect)) {
      return;
    }
    viaConnect();
  };

  function serve(handler: UniversalHandler, uReq: UniversalServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
    handler(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        const err = ConnectError.from(reason);
        if (err.code !== Code.Aborted) {
          logger.debug({ rpc: handler.method.name, err: err.message }, "response not written in full");
        }
      });
  }
}

/**
 * The longest delay a Node timer takes: a longer one overflows to 1 ms
 * (TimeoutOverflowWarning), which would end a stream at once.
 */
const longestTimerMs = 2 ** 31 - 1;

/**
 * Removes a deadline too far away for a timer (about 24.8 days), in either
 * protocol's header, before Connect or the lean path reads it: Connect would
 * set a timer that fires at once (see docs/upstream.md). A call that asks for
 * a month gets no deadline at all, which is what it meant in practice.
 */
function dropTimeoutsBeyondTimers(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): void {
  const grpc = headers["grpc-timeout"];
  if (typeof grpc === "string" && (parseTimeout(grpc, Number.MAX_SAFE_INTEGER).timeoutMs ?? 0) > longestTimerMs) {
    delete headers["grpc-timeout"];
  }
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > longestTimerMs) {
    delete headers["connect-timeout-ms"];
  }
}

/** What closes a call's transport without a status: its HTTP/2 stream, or its HTTP/1.1 socket. */
function hardClose(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): () => void {
  if ("stream" in req) {
    const stream = req.stream;
    return () => {
      if (!stream.closed && !stream.destroyed) stream.close(http2constants.NGHTTP2_ENHANCE_YOUR_CALM);
    };
  }
  // A response that ended in time has handed its keep-alive socket on to
  // the next request: leave it alone.
  const socket = req.socket;
  return () => {
    if (!res.writableFinished) socket.destroy();
  };
}

async function* prepend(first: Buffer[], rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield* first;
  yield* rest;
}
