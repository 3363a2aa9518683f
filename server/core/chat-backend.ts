import type { ChannelRef, ChatEvent, ChatSession } from "./chat-session.js";

/** A value, or a promise of one: the in-memory backend answers at once. */
export type MaybePromise<T> = T | Promise<T>;

/** Which part of the sorted channel list to return. */
export interface ChannelPage {
  /** Only names after this one, in code-unit order. */
  after?: string;
  /** At most this many channels. */
  limit: number;
}

/** How a session is opened. */
export interface ConnectOptions {
  /** Take the name from a group that holds it. */
  reclaim?: boolean;
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
export interface ChatBackend {
  /**
   * Opens a session for the username. Fails with "invalid-input" for a
   * malformed name and "already-exists" when the name is an online user or
   * a group, unless options.reclaim is set: then a group that holds the name
   * is deleted (its members leave it) and the user gets its name. That is
   * how a user whose identity is signed wins over a group squatting its name.
   */
  connect(username: string, options?: ConnectOptions): MaybePromise<ChatSession>;
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
   * handed to the engine that delivers it in order).
   */
  send(caller: string, channel: string, text: string): MaybePromise<ChatEvent>;
  /**
   * Lists the online users and the groups sorted by name: all of them, or the
   * page of at most page.limit whose names come after page.after.
   */
  listChannels(page?: ChannelPage): MaybePromise<ChannelRef[]>;
  /** Counts users and groups. */
  stats(): MaybePromise<ChatStats>;
}
