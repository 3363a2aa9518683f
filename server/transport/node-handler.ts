import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { requestCallValues } from "./call-values.js";
import { isConnectionSpecific } from "./connection-headers.js";
import { dropTimeoutsBeyondTimers } from "./drop-timeouts-beyond-timers.js";
import type { RequestBodyGuard } from "./request-body-guard.js";
import type { Route } from "./route-table.js";

/** A request listener for node:http and node:http2's compatibility API. */
export type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** What {@link createNodeHandler} serves, and how. */
export interface NodeHandlerOptions {
  logger: Logger;
  /** Bounds the bodies of single-message requests on HTTP/2; none when undefined. */
  bodyGuard?: RequestBodyGuard;
}

/**
 * Creates the request listener that serves the routes through Connect's own
 * handlers: every request of HTTP/1.1, and the HTTP/2 calls the lean path
 * declines (other protocols, codecs and edge cases). It does what
 * connectNodeAdapter from @connectrpc/connect-node does, and is kept here
 * rather than built on it for two reasons: each call gets a way to close its
 * transport as a context value, and a response that could not be written
 * (the client went away mid-stream, an everyday event here) is logged at
 * debug level through the server's logger, where the adapter writes every
 * one to console.error.
 */
export function createNodeHandler(routes: ReadonlyMap<string, Route>, options: NodeHandlerOptions): NodeHandler {
  const { logger, bodyGuard } = options;
  return (req, res) => {
    const route = routes.get(req.url?.split("?", 2)[0] ?? "");
    if (route === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    dropTimeoutsBeyondTimers(req.headers);
    if ("stream" in res) dropConnectionSpecificTrailers(res);
    if ("stream" in req && bodyGuard !== undefined && route.lean !== undefined) bodyGuard.watchRequest(req);
    const values = requestCallValues(req, res, route.handler.method.methodKind === "server_streaming");
    let uReq: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    } catch (err) {
      // connect-node builds the request's URL from its authority (or Host),
      // and throws for one that is not a URL ("[", say). A throw here would
      // end the process: the client gets 400 instead.
      logger.debug({ err }, "request refused: no URL can be made of its authority");
      res.statusCode = 400;
      res.end();
      return;
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
}

/**
 * Makes a response of node's HTTP/2 compatibility layer leave out the
 * connection-specific trailers a handler may have set: node throws for them
 * from its own event when it sends the trailers, which would end the process
 * (headers it drops by itself, with a warning).
 */
function dropConnectionSpecificTrailers(res: http2.Http2ServerResponse): void {
  const addTrailers = res.addTrailers.bind(res);
  res.addTrailers = (trailers) => {
    const kept: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(trailers)) {
      if (!isConnectionSpecific(name.toLowerCase(), String(value))) kept[name] = value;
    }
    addTrailers(kept);
  };
}
