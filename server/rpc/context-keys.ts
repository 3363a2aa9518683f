import { createContextKey } from "@connectrpc/connect";

// The context values a call carries from one layer to another: the transport
// (transport/call-values.ts) sets the first three, the request gate and the
// interceptors the caller's, and the chat's stream handler what only it knows
// of how its stream ends. They live together so that whoever sets a value and
// whoever reads it import it from here, and rpc/ never imports transport/ (nor
// transport/ an interceptor) for a key.

/**
 * The context value that lets a handler close its call's transport without a
 * status: it resets the HTTP/2 stream (with ENHANCE_YOUR_CALM, which gRPC
 * clients read as RESOURCE_EXHAUSTED), or destroys the HTTP/1.1 socket of a
 * browser's call. The Connect handler needs it for one thing the framework
 * does not offer: ending a stream whose client stopped reading, since no
 * trailer can reach such a client. It is empty on transports without a
 * socket, such as the in-memory one used by tests. The transport sets it.
 */
export const hardCloseKey = createContextKey<(() => void) | undefined>(undefined, {
  description: "closes the call's transport without a status",
});

/**
 * The context value that tells, once a call has ended, whether it ended
 * because its connection went away (a drop: a reset socket, a dead
 * connection found by PING, a network gone) rather than because the client
 * cancelled the call (its goodbye). A session whose stream dropped is held
 * for a resume; one whose client said goodbye ends at once. It answers
 * false on transports without a connection, such as the in-memory one used
 * by tests, so that they behave as a goodbye unless a test says otherwise.
 * The transport sets it, for streaming calls.
 */
export const droppedKey = createContextKey<() => boolean>(() => false, {
  description: "whether the call's connection went away, rather than the client cancelling the call",
});

/**
 * The context value with the address the call came from (as
 * transport/address-key.ts counts addresses), for the limits per address.
 * The transport sets it.
 */
export const clientAddressKey = createContextKey<string | undefined>(undefined, { description: "the client's IP address" });

/**
 * The context value that carries the authenticated caller's username from the
 * request gate (signed identities) or the auth interceptor to the handlers,
 * and to the interceptors that log, count and limit calls. Connect, which is
 * exempt, sets it to the username its stream claims.
 */
export const userKey = createContextKey<string | undefined>(undefined, { description: "authenticated username" });

/**
 * The context value with when the caller's token expires (ms since the
 * epoch), for streams to end then. The request gate of signed identities
 * sets it.
 */
export const tokenExpiresAtKey = createContextKey<number | undefined>(undefined, { description: "when the caller's token expires" });

/**
 * The context value in which a streaming handler records why its stream is
 * ending when it knows better than the transport: a chat session cut off for
 * falling behind ends with a reset, but the reason is that it fell behind.
 * The stream's observers (see observeStream) report it as the end's reason.
 */
export const endReasonKey = createContextKey<unknown>(undefined, { description: "why the handler ended its stream" });

/** The context value a session's handler sets when its stream resumed a held session, for the log. */
export const resumedKey = createContextKey<boolean>(false, { description: "whether the stream resumed a held session" });
