import type * as http from "node:http";
import type * as http2 from "node:http2";
import { type ContextValues, createContextValues } from "@connectrpc/connect";
import { clientAddressKey, droppedKey, hardCloseKey } from "../rpc/context-keys.js";
import { addressKey } from "./address-key.js";
import { connectionGone, hardClose, hardCloseStream, streamConnectionGone } from "./hard-close.js";

/** The client address key of each HTTP/2 connection, worked out once for all its calls. */
const sessionAddresses = new WeakMap<http2.Http2Session, string>();

/**
 * The context values the transport gives a call on an HTTP/2 stream: how to
 * close its stream, the key its client's address counts under, and, for a
 * stream of events (the only calls that care), whether its connection went
 * away.
 */
export function streamCallValues(stream: http2.ServerHttp2Stream, streaming: boolean): ContextValues {
  const session = stream.session;
  let address = session === undefined ? "" : sessionAddresses.get(session);
  if (address === undefined && session !== undefined) {
    address = addressKey(session.socket?.remoteAddress);
    sessionAddresses.set(session, address);
  }
  const values = createContextValues().set(hardCloseKey, hardCloseStream(stream)).set(clientAddressKey, address);
  if (streaming) values.set(droppedKey, streamConnectionGone(stream));
  return values;
}

/** The same context values for a request of node's HTTP/1.1 or HTTP/2 compatibility API. */
export function requestCallValues(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  streaming: boolean,
): ContextValues {
  if ("stream" in req) return streamCallValues(req.stream, streaming);
  const values = createContextValues().set(hardCloseKey, hardClose(req, res)).set(clientAddressKey, addressKey(req.socket.remoteAddress));
  if (streaming) values.set(droppedKey, connectionGone(req));
  return values;
}
