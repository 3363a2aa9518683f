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
  | "unavailable"
  /** The stream was replaced: another stream resumed its session. */
  | "aborted"
  /** The server has the feature asked for switched off. */
  | "switched-off";

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

/**
 * The chat's failures, made in one place so that every backend words them
 * alike. Each message quotes the offending value.
 */
export const chatErrors = {
  notSignedIn: (user: string) => new ChatError("not-signed-in", `${quote(user)} is not connected`),
  notYourName: (tokenUser: string, name: string) =>
    new ChatError("not-allowed", `the token is ${quote(tokenUser)}'s: a stream connects only as its token's user, not as ${quote(name)}`),
  tokenExpired: (user: string) => new ChatError("not-signed-in", `the token of ${quote(user)} has expired: connect again with a fresh one`),
  usernameOnline: (user: string) => new ChatError("already-exists", `username ${quote(user)} is already online`),
  usernameIsGroup: (user: string) => new ChatError("already-exists", `${quote(user)} is the name of a group`),
  groupExists: (group: string) => new ChatError("already-exists", `group ${quote(group)} already exists`),
  groupIsUser: (group: string) => new ChatError("already-exists", `${quote(group)} is the name of an online user`),
  alreadyMember: (user: string, group: string) => new ChatError("already-exists", `${quote(user)} is already a member of group ${quote(group)}`),
  noSuchGroup: (group: string) => new ChatError("not-found", `group ${quote(group)} does not exist`),
  noSuchChannel: (channel: string) => new ChatError("not-found", `no online user or group is named ${quote(channel)}`),
  notAMember: (user: string, group: string) => new ChatError("not-a-member", `${quote(user)} is not a member of group ${quote(group)}`),
  mustJoin: (user: string, group: string) => new ChatError("not-allowed", `${quote(user)} must join group ${quote(group)} before sending to it`),
  tooManyGroups: (user: string, max: number) => new ChatError("exhausted", `${quote(user)} is already in ${max} groups, the most one user may join`),
  tooManyGroupsInTotal: (max: number) => new ChatError("exhausted", `the server already holds ${max} groups, the most it allows`),
  missedEvents: (user: string, channel: string) =>
    new ChatError(
      "unavailable",
      `the server missed events of ${quote(channel)} meant for ${quote(user)} (its link to the chat's shared store dropped them): connect again`,
    ),
  fellBehind: (user: string, why: string) => new ChatError("exhausted", `${quote(user)} fell too far behind: ${why}`),
  serverQueuesFull: (user: string, held: number, limit: number) =>
    new ChatError(
      "exhausted",
      `${quote(user)} was cut off: the server's queues reached their limit of ${limit} bytes, and this stream held the most (${held} bytes waiting to be read)`,
    ),
  usernameHeld: (user: string, graceMs: number) =>
    new ChatError(
      "already-exists",
      `username ${quote(user)} is held for its dropped session to resume (for up to ${graceMs} ms after the drop): only its resume token may take it`,
    ),
  resumeGraceOver: (user: string, graceMs: number, why: unknown) =>
    new ChatError("unavailable", `the stream of ${quote(user)} dropped (${describeReason(why)}) and was not resumed within ${graceMs} ms`),
  resumedElsewhere: (user: string) => new ChatError("aborted", `the session of ${quote(user)} was resumed by another stream`),
  receivedTooMany: (user: string, received: number | bigint) =>
    new ChatError("invalid-input", `received_events ${received} is more than the session of ${quote(user)} delivered`),
  receivedWithoutToken: () => new ChatError("invalid-input", "received_events counts the events of a session to resume: it needs a resume_token"),
  noSessionToResume: (user: string) => new ChatError("not-found", `no session of ${quote(user)} is held for that resume token`),
  mustJoinToList: (user: string, group: string) => new ChatError("not-allowed", `${quote(user)} must join group ${quote(group)} to list its members`),
  mustJoinToRead: (user: string, group: string) => new ChatError("not-allowed", `${quote(user)} must be a member of group ${quote(group)} to read its history`),
  historyOff: () => new ChatError("switched-off", "this server keeps no message history (--history-messages 0)"),
  stalled: (user: string, ms: number) =>
    new ChatError("exhausted", `${quote(user)} fell too far behind: its client read nothing for ${ms} ms while a response waited`),
};

/** The message of an error, or the reason itself as text: for log lines and messages. */
export function describeReason(reason: unknown): string {
  if (typeof reason === "string") return reason;
  if (reason instanceof Error) return reason.message;
  return String(reason);
}

/**
 * Quotes a client-supplied value for an error message, cut to a readable
 * length and with control characters escaped by JSON.stringify.
 */
export function quote(value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(shown);
}
