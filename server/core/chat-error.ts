/**
 * The ways a chat operation can fail, named by what went wrong rather than by
 * any wire protocol. The RPC layer maps each kind to a status code in one place.
 */
export type ChatErrorKind =
  /** A name or a text is malformed: empty, too long, or with forbidden characters. */
  | "invalid-input"
  /** The name is already in use, or the caller already is a member. */
  | "already-exists"
  /** The caller names no online user. */
  | "not-signed-in"
  /** The named group or user does not exist. */
  | "not-found"
  /** The caller tried to leave a group it is not in. */
  | "not-a-member"
  /** The caller tried to send to a group it has not joined. */
  | "not-allowed"
  /** A per-user limit was reached, or the session fell too far behind. */
  | "exhausted"
  /** The server is going away. */
  | "unavailable";

/**
 * ChatError is the only error the chat core throws on purpose. Its message is
 * meant for the client and names the offending value.
 */
export class ChatError extends Error {
  override name = "ChatError";

  /**
   * Creates an error of the given kind with a message for the client.
   */
  constructor(
    readonly kind: ChatErrorKind,
    message: string,
  ) {
    super(message);
  }
}
