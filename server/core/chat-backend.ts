import type { ChannelPage } from "./channel-page.js";
import type { ChatSession } from "./chat-session.js";
import type { EventOptIns } from "./event-opt-ins.js";
import type { HistoryPage, MessagePage } from "./message-history.js";
import type { ChannelRef, ChatEvent } from "./session-event.js";

/** A value, or a promise of one: the in-memory backend answers at once. */
export type MaybePromise<T> = T | Promise<T>;

/** How a session is opened: what its client asked to receive, and more. */
export interface ConnectOptions extends EventOptIns {
  /** Take the name from a group that holds it. */
  reclaim?: boolean;
}

/** A request to continue a session whose stream dropped. */
export interface ResumeRequest extends EventOptIns {
  /** The session's resume token. */
  token: string;
  /** How many events (after Connected) the client received on the session. */
  received: number;
}

/** A session resumed: the events after `received` wait in its queue again. */
export interface Resumed {
  session: ChatSession;
  /** Whether this is the same session (groups kept); false for a fresh one that replaced it. */
  resumed: boolean;
  /** How many missed events the session's history no longer held. */
  lost: number;
  /** The new stream's hold on the session (see ChatSession.attachStream). */
  stream: AbortSignal;
}

/** Settings every backend shares about resuming and presence. */
export interface SessionPolicy {
  /** How long a session whose stream dropped is held for a resume; 0 ends it at once. */
  readonly resumeGraceMs: number;
  /** Whether presence events are on: a session that asks for them gets them. */
  readonly presence: boolean;
}

/** What a backend holds, for health checks, logs, metrics and tests. */
export interface ChatStats {
  readonly users: number;
  readonly groups: number;
}

/**
 * Where the chat's state and deliveries live: in this process's memory (the
 * default, {@link createMemoryBackend}), or shared by several nodes. The RPC layer
 * sees only this interface. Sessions are always local: a backend registers a
 * session's username for everyone, and delivers into the queues of the
 * sessions it holds. Failures are thrown (or rejected) as ChatError.
 */
export interface ChatBackend extends SessionPolicy {
  /**
   * The message history this process keeps, for its metrics: the in-memory
   * backend's when history is on; undefined when it is off, or kept in a
   * shared store (cluster mode keeps it in Redis).
   */
  readonly localHistory?: { readonly bytes: number; readonly size: number };
  /**
   * Opens a session for the username. Fails with "invalid-input" for a
   * malformed name and "already-exists" when the name is an online user or
   * a group, unless options.reclaim is set: then a group that holds the name
   * is deleted (its members leave it) and the user gets its name. That is
   * how a user whose identity is signed wins over a group squatting its name.
   */
  connect(username: string, options?: ConnectOptions): MaybePromise<ChatSession>;
  /**
   * Continues the session of the resume token, taking it from the stream
   * that holds it if any: the events delivered after the first
   * request.received are queued again. Fails with "not-found" when no session
   * of that name holds that token (the caller then connects afresh), and with
   * "invalid-input" when request.received is more than the session
   * delivered, changing nothing.
   */
  resume(username: string, request: ResumeRequest): MaybePromise<Resumed>;
  /**
   * The session's stream dropped without the client cancelling it: the
   * session stays (its name, groups and a queue of what arrives) for
   * resumeGraceMs, then ends as by disconnect. Without a grace, the same as
   * disconnect.
   */
  hold(session: ChatSession, reason: unknown): MaybePromise<void>;
  /**
   * Ends a session and releases what it held: the username is free, and the
   * user leaves every group, deleting groups left empty. Safe to call more
   * than once, and after the backend already cut the session off.
   */
  disconnect(session: ChatSession, reason?: unknown): MaybePromise<void>;
  /** Reports whether the username belongs to a live session. */
  isOnline(username: string): MaybePromise<boolean>;
  /** Creates a group with the caller as its first member. */
  createGroup(caller: string, name: string): MaybePromise<void>;
  /** Adds the caller to an existing group. */
  joinGroup(caller: string, name: string): MaybePromise<void>;
  /** Removes the caller from a group, deleting the group when it is left empty. */
  leaveGroup(caller: string, name: string): MaybePromise<void>;
  /**
   * Sends text to a user or to a group the caller is a member of, and returns
   * the message once it is queued for every recipient (or, across nodes,
   * handed to the engine that delivers it in order), and kept in the
   * channel's history. With a request id (see send-dedup.ts), a retry of a
   * send the backend remembers returns the first call's message and delivers
   * nothing; the same id with another channel or text fails with
   * "invalid-input", delivering nothing.
   */
  send(caller: string, channel: string, text: string, requestId?: string): MaybePromise<ChatEvent>;
  /**
   * Reads the history of a channel the caller may read, newest first: a
   * group it is a member of ("not-allowed" otherwise), or the direct
   * messages between it and a user. Fails as send does for an unknown or
   * malformed name, with "invalid-input" for a cursor not issued for that
   * channel, and with "switched-off" when history is off.
   */
  listMessages(caller: string, channel: string, page: HistoryPage): MaybePromise<MessagePage>;
  /**
   * Lists the online users and the groups sorted by name: all of them, or the
   * page of at most page.limit whose names come after page.after.
   */
  listChannels(page?: ChannelPage): MaybePromise<ChannelRef[]>;
  /**
   * Lists the members of a group the caller is in, sorted by name: all, or
   * the page after page.after. Fails with "not-found" for no such group and
   * "not-allowed" when the caller is not a member.
   */
  listMembers(caller: string, group: string, page?: ChannelPage): MaybePromise<string[]>;
  /** Counts users and groups. */
  stats(): MaybePromise<ChatStats>;
}
