import { createContextKey } from "@connectrpc/connect";

/**
 * The context value that tells, once a call has ended, whether it ended
 * because its connection went away (a drop: a reset socket, a dead
 * connection found by PING, a network gone) rather than because the client
 * cancelled the call (its goodbye). A session whose stream dropped is held
 * for a resume; one whose client said goodbye ends at once. It answers
 * false on transports without a connection, such as the in-memory one used
 * by tests, so that they behave as a goodbye unless a test says otherwise.
 */
export const droppedKey = createContextKey<() => boolean>(() => false, {
  description: "whether the call's connection went away, rather than the client cancelling the call",
});
