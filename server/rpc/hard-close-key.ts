import { createContextKey } from "@connectrpc/connect";

/**
 * The context value that lets a handler close its call's transport without a
 * status: it resets the HTTP/2 stream (with ENHANCE_YOUR_CALM, which gRPC
 * clients read as RESOURCE_EXHAUSTED), or destroys the HTTP/1.1 socket of a
 * browser's call. The Connect handler needs it for one thing the framework
 * does not offer: ending a stream whose client stopped reading, since no
 * trailer can reach such a client. It is empty on transports without a
 * socket, such as the in-memory one used by tests.
 */
export const hardCloseKey = createContextKey<(() => void) | undefined>(undefined, {
  description: "closes the call's transport without a status",
});
