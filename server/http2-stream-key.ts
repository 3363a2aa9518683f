import type { ServerHttp2Stream } from "node:http2";
import { createContextKey } from "@connectrpc/connect";

/**
 * The context value that lets a handler reach the HTTP/2 stream under its
 * call. The Connect handler needs it for one thing the framework does not
 * offer: resetting a stream whose client stopped reading, since no trailer can
 * reach such a client. It is empty on transports without HTTP/2, such as the
 * in-memory one used by tests.
 */
export const http2StreamKey = createContextKey<ServerHttp2Stream | undefined>(undefined, {
  description: "the HTTP/2 stream of the call",
});
