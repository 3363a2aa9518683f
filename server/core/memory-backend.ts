import { randomUUID } from "node:crypto";
import { pageOf, sortChannels } from "./channel-page.js";
import type { ChannelPage, ChatBackend, ChatStats, ConnectOptions } from "./chat-backend.js";
import { type ChatError, chatErrors } from "./chat-error.js";
import {
  type ChannelRef,
  type ChatEvent,
  type ChatSession,
  createQueueBudget,
  createSessionState,
  createWakeScheduler,
  enforceQueueBudget,
  type SessionState,
} from "./chat-session.js";
import { measureText } from "./message-text.js";
import { assertValidName } from "./names.js";

/** Settings of a {@link MemoryBackend}. Every field has a default. */
export interface MemoryBackendOptions {
  /** How many events may wait for one session before it is cut off. Default 4096. */
  queueLimit?: number;
  /** How many bytes (see queuedEventBytes) may wait for one session before it is cut off. Default 4 MiB. */
  queueLimitBytes?: number;
  /** How many bytes may wait in all the sessions' queues together; past it, the largest are cut off. Default 256 MiB. */
  maxQueuedBytes?: number;
  /** How many groups may exist at once. Default 100,000. */
  maxGroups?: number;
  /** How many groups one user may be a member of at once. Default 1000. */
  maxGroupsPerUser?: number;
  /** The clock that stamps messages. */
  now?: () => Date;
  /** Makes message ids; they must be unique. Default: random UUIDs. */
  newId?: () => string;
}

/**
 * MemoryBackend is the chat's core in one process: who is online, which groups
 * exist and who is in them, and the delivery of messages into the sessions'
 * queues. It is the in-memory {@link ChatBackend}, whose every method runs to
 * completion synchronously, so each one is atomic with respect to the others,
 * and a message is queued for all its recipients before send returns. The
 * backend knows nothing of RPC; callers are named by username, and failures are
 * thrown as ChatError.
 */
export interface MemoryBackend extends ChatBackend {
  /**
   * Opens a session for the username. Throws "invalid-input" for a malformed
   * name and "already-exists" when the name is an online user or a group.
   */
  connect(username: string, options?: ConnectOptions): ChatSession;
  /**
   * Ends a session and releases what it held: the username is free at once,
   * and the user leaves every group, deleting groups left empty. Safe to call
   * more than once, and after the backend already cut the session off.
   */
  disconnect(session: ChatSession, reason?: unknown): void;
  /** Reports whether the username belongs to a live session. */
  isOnline(username: string): boolean;
  /** Creates a group with the caller as its first member. */
  createGroup(caller: string, name: string): void;
  /** Adds the caller to an existing group. */
  joinGroup(caller: string, name: string): void;
  /** Removes the caller from a group, deleting the group when it is left empty. */
  leaveGroup(caller: string, name: string): void;
  /**
   * Sends text to a user or to a group the caller is a member of, and returns
   * the message once it is queued for every recipient. A recipient whose queue
   * is full is cut off instead ("exhausted"), without slowing the others.
   */
  send(caller: string, channel: string, text: string): ChatEvent;
  /** Lists the online users and the groups sorted by name: all, or one page. */
  listChannels(page?: ChannelPage): ChannelRef[];
  /** Counts users and groups. */
  stats(): ChatStats;
}

/**
 * Creates an in-memory {@link MemoryBackend}.
 */
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: a factory: the methods it returns are short closures over the state they share, which splitting it would have to pass around.
export function createMemoryBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const limits = { events: options.queueLimit ?? 4096, bytes: options.queueLimitBytes ?? 4 * 1024 * 1024 };
  const budget = createQueueBudget(options.maxQueuedBytes ?? 256 * 1024 * 1024);
  const maxGroupsPerUser = options.maxGroupsPerUser ?? 1000;
  const maxGroups = options.maxGroups ?? 100_000;
  const now = options.now ?? (() => new Date());
  const newId = options.newId ?? randomUUID;
  const schedule = createWakeScheduler();
  const users = new Map<string, SessionState>();
  // Members keep the order in which they joined.
  const groups = new Map<string, Set<SessionState>>();
  // The sorted channel list, kept until a name comes or goes: pages of
  // ListChannels are then a binary search and a slice, not a sort each.
  let sorted: ChannelRef[] | undefined;

  function caller(username: string): SessionState {
    const session = users.get(username);
    if (session === undefined) {
      throw chatErrors.notSignedIn(username);
    }
    return session;
  }

  function existingGroup(name: string): Set<SessionState> {
    assertValidName(name, "group name");
    const members = groups.get(name);
    if (members === undefined) {
      throw chatErrors.noSuchGroup(name);
    }
    return members;
  }

  function assertRoomForGroup(session: SessionState): void {
    if (session.groups.size >= maxGroupsPerUser) {
      throw chatErrors.tooManyGroups(session.username, maxGroupsPerUser);
    }
  }

  function removeMember(session: SessionState, name: string, members: Set<SessionState>): void {
    members.delete(session);
    session.groups.delete(name);
    if (members.size === 0) {
      groups.delete(name);
      sorted = undefined;
    }
  }

  function recipientsOf(sender: SessionState, channel: string): [ChannelRef["type"], Iterable<SessionState>] {
    const members = groups.get(channel);
    if (members !== undefined) {
      if (!members.has(sender)) {
        throw chatErrors.mustJoin(sender.username, channel);
      }
      return ["group", members];
    }
    const recipient = users.get(channel);
    if (recipient === undefined) {
      throw chatErrors.noSuchChannel(channel);
    }
    return ["user", [recipient]];
  }

  function deliver(recipients: Iterable<SessionState>, event: ChatEvent): void {
    let behind: [SessionState, ChatError][] | undefined;
    for (const session of recipients) {
      const overflow = session.push(event);
      if (overflow !== undefined) {
        behind ??= [];
        behind.push([session, overflow]);
      }
    }
    // Cut off after the loop: disconnecting edits the member set being iterated.
    if (behind !== undefined) {
      for (const [session, reason] of behind) {
        disconnect(session, reason);
      }
    }
    enforceQueueBudget(
      budget,
      () => users.values(),
      (session) => disconnect(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes)),
    );
  }

  function disconnect(session: ChatSession, reason?: unknown): void {
    // Every session comes from connect below, which makes a SessionState:
    // the public type only hides what the backend alone touches.
    const state = session as SessionState;
    state.end(reason);
    if (users.get(state.username) === state) {
      users.delete(state.username);
      sorted = undefined;
    }
    for (const name of state.groups) {
      const members = groups.get(name);
      if (members !== undefined) {
        removeMember(state, name, members);
      }
    }
  }

  return {
    connect(username, options) {
      assertValidName(username, "username");
      if (users.has(username)) {
        throw chatErrors.usernameOnline(username);
      }
      const squatted = groups.get(username);
      if (squatted !== undefined && options?.reclaim !== true) {
        throw chatErrors.usernameIsGroup(username);
      }
      for (const member of [...(squatted ?? [])]) removeMember(member, username, squatted!);
      const session = createSessionState(username, limits, schedule, budget);
      users.set(username, session);
      sorted = undefined;
      return session;
    },

    disconnect,

    isOnline(username) {
      return users.has(username);
    },

    createGroup(callerName, name) {
      const session = caller(callerName);
      assertValidName(name, "group name");
      if (groups.has(name)) {
        throw chatErrors.groupExists(name);
      }
      if (users.has(name)) {
        throw chatErrors.groupIsUser(name);
      }
      if (groups.size >= maxGroups) {
        throw chatErrors.tooManyGroupsInTotal(maxGroups);
      }
      assertRoomForGroup(session);
      groups.set(name, new Set([session]));
      session.groups.add(name);
      sorted = undefined;
    },

    joinGroup(callerName, name) {
      const session = caller(callerName);
      const members = existingGroup(name);
      if (members.has(session)) {
        throw chatErrors.alreadyMember(callerName, name);
      }
      assertRoomForGroup(session);
      members.add(session);
      session.groups.add(name);
    },

    leaveGroup(callerName, name) {
      const session = caller(callerName);
      const members = existingGroup(name);
      if (!members.has(session)) {
        throw chatErrors.notAMember(callerName, name);
      }
      removeMember(session, name, members);
    },

    send(callerName, channel, text) {
      const session = caller(callerName);
      assertValidName(channel, "channel");
      const textBytes = measureText(text);
      const [type, recipients] = recipientsOf(session, channel);
      const event: ChatEvent = {
        id: newId(),
        sender: callerName,
        channel: { name: channel, type },
        text,
        textBytes,
        sentAt: now(),
        holders: 0,
      };
      deliver(recipients, event);
      return event;
    },

    listChannels(page) {
      if (sorted === undefined) {
        const channels: ChannelRef[] = [];
        for (const name of users.keys()) {
          channels.push({ name, type: "user" });
        }
        for (const name of groups.keys()) {
          channels.push({ name, type: "group" });
        }
        sorted = sortChannels(channels);
      }
      return pageOf(sorted, page);
    },

    stats() {
      return { users: users.size, groups: groups.size };
    },
  };
}
