import { randomUUID } from "node:crypto";
import { type BackendSession, createBackendSession } from "./backend-session.js";
import type { ChannelPage } from "./channel-page.js";
import { pageOf, pageOfNames, sortChannels } from "./channel-page.js";
import type { ChatBackend, ChatStats, ConnectOptions, Resumed, ResumeRequest } from "./chat-backend.js";
import { chatErrors } from "./chat-error.js";
import type { ChatSession } from "./chat-session.js";
import { createLocalSessions } from "./local-sessions.js";
import { measureText } from "./measure-text.js";
import { leaveReasonOf, membershipEvent } from "./membership-event.js";
import { createMessageHistory, defaultHistoryBounds, type HistoryBounds, type HistoryPage, type MessageHistory, type MessagePage } from "./message-history.js";
import { assertValidName } from "./names.js";
import { createQueueBudget } from "./queue-budget.js";
import { defaultResumeHistory, type HistoryLimits, resumeSession } from "./resume-session.js";
import { checkRequestId, createSendDedup, type DedupBounds, defaultDedupBounds, replayOf, type SendDedup } from "./send-dedup.js";
import type { ChannelRef, ChatEvent } from "./session-event.js";
import { createWakeScheduler } from "./wake-scheduler.js";

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
  /** How long a session whose stream dropped is held for a resume. Default 0: it ends at once. */
  resumeGraceMs?: number;
  /** What a resumable session keeps of what it delivered. Default 256 events and 256 KiB. */
  resumeHistory?: HistoryLimits;
  /** How often presence changes are published, coalesced; 0 switches presence off. Default 250 ms. */
  presenceIntervalMs?: number;
  /** What history is kept (see message-history.ts). Default {@link defaultHistoryBounds}. */
  history?: HistoryBounds;
  /**
   * Whether a pair's history outlives the sessions of its users: only when
   * names are signed identities. Otherwise a name passes to whoever connects
   * next, so a user's direct history goes with its session. Default false.
   */
  keepDirectHistory?: boolean;
  /** How request ids of sends are remembered (see send-dedup.ts). Default {@link defaultDedupBounds}. */
  dedup?: DedupBounds;
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
  send(caller: string, channel: string, text: string, requestId?: string): ChatEvent;
  /** Reads a page of a channel's history (see ChatBackend.listMessages). */
  listMessages(caller: string, channel: string, page: HistoryPage): MessagePage;
  /** The history, for tests and metrics. */
  readonly history: MessageHistory;
  /** The remembered request ids, for tests and metrics. */
  readonly dedup: SendDedup;
  /** Lists the online users and the groups sorted by name: all, or one page. */
  listChannels(page?: ChannelPage): ChannelRef[];
  /** Counts users and groups. */
  stats(): ChatStats;
  /** Continues a held or streaming session (see ChatBackend.resume). */
  resume(username: string, request: ResumeRequest): Resumed;
  /** Holds a session whose stream dropped, for the resume grace. */
  hold(session: ChatSession, reason: unknown): void;
  /** Lists a group's members, for a member. */
  listMembers(caller: string, group: string, page?: ChannelPage): string[];
  /** Stops the timers of held sessions and presence; for tests and shutdown. */
  close(): void;
}

/**
 * Creates an in-memory {@link MemoryBackend}: its local sessions (see
 * local-sessions.ts) are the whole chat, and the names and groups live here.
 */
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: a factory: the methods it returns are short closures over the state they share, which splitting it would have to pass around.
export function createMemoryBackend(options: MemoryBackendOptions = {}): MemoryBackend {
  const limits = { events: options.queueLimit ?? 4096, bytes: options.queueLimitBytes ?? 4 * 1024 * 1024 };
  const budget = createQueueBudget(options.maxQueuedBytes ?? 256 * 1024 * 1024);
  const maxGroupsPerUser = options.maxGroupsPerUser ?? 1000;
  const maxGroups = options.maxGroups ?? 100_000;
  const now = options.now ?? (() => new Date());
  const newId = options.newId ?? randomUUID;
  const resumeGraceMs = options.resumeGraceMs ?? 0;
  const history = resumeGraceMs > 0 ? (options.resumeHistory ?? defaultResumeHistory) : undefined;
  const schedule = createWakeScheduler();
  const messages = createMessageHistory({ ...(options.history ?? defaultHistoryBounds), budget });
  const keepDirectHistory = options.keepDirectHistory ?? false;
  const dedup = createSendDedup(options.dedup ?? defaultDedupBounds);
  const local = createLocalSessions({
    budget,
    history: messages,
    presenceIntervalMs: options.presenceIntervalMs ?? 250,
    cutOff: (session, reason) => disconnect(session, reason),
  });
  // Every group has a member (it is deleted with its last), so the groups are those the local sessions are in.
  let groupCount = 0;
  // The sorted channel list, kept until a name comes or goes: pages of
  // ListChannels are then a binary search and a slice, not a sort each.
  let sorted: ChannelRef[] | undefined;

  function caller(username: string): BackendSession {
    const session = local.get(username);
    if (session === undefined) {
      throw chatErrors.notSignedIn(username);
    }
    return session;
  }

  function existingGroup(name: string): ReadonlySet<BackendSession> {
    assertValidName(name, "group name");
    const members = local.members(name);
    if (members === undefined) {
      throw chatErrors.noSuchGroup(name);
    }
    return members;
  }

  function assertRoomForGroup(session: BackendSession): void {
    if (session.groups.size >= maxGroupsPerUser) {
      throw chatErrors.tooManyGroups(session.username, maxGroupsPerUser);
    }
  }

  function removeMember(session: BackendSession, name: string): void {
    if (local.removeMember(name, session)) {
      messages.dropGroup(name);
      groupCount--;
      sorted = undefined;
      local.presenceChanged({ name, type: "group" }, false);
    }
  }

  function recipientsOf(sender: BackendSession, channel: string): [ChannelRef["type"], Iterable<BackendSession>] {
    const members = local.members(channel);
    if (members !== undefined) {
      if (!members.has(sender)) {
        throw chatErrors.mustJoin(sender.username, channel);
      }
      return ["group", members];
    }
    const recipient = local.get(channel);
    if (recipient === undefined) {
      throw chatErrors.noSuchChannel(channel);
    }
    return ["user", [recipient]];
  }

  function disconnect(chatSession: ChatSession, reason?: unknown): void {
    // Every session comes from connect below, which makes a BackendSession:
    // the public type only hides what the backend alone touches.
    const session = chatSession as BackendSession;
    session.end(reason);
    if (local.get(session.username) === session) {
      sorted = undefined;
      local.presenceChanged({ name: session.username, type: "user" }, false);
      // The name passes to whoever connects next: it must not read this user's conversations.
      if (!keepDirectHistory) {
        messages.dropUser(session.username);
        dedup.forgetUser(session.username);
      }
    }
    const leave = leaveReasonOf(reason);
    for (const name of [...session.groups]) {
      removeMember(session, name);
      const members = local.members(name);
      if (members !== undefined) local.notify(members, membershipEvent("member-left", name, session.username, leave));
    }
    local.remove(session);
  }

  return {
    resumeGraceMs,
    presence: local.presence,

    connect(username, options = {}) {
      assertValidName(username, "username");
      const existing = local.get(username);
      if (existing !== undefined) {
        throw local.isHeld(existing) ? chatErrors.usernameHeld(username, resumeGraceMs) : chatErrors.usernameOnline(username);
      }
      const squatted = local.members(username);
      if (squatted !== undefined && options.reclaim !== true) {
        throw chatErrors.usernameIsGroup(username);
      }
      if (squatted !== undefined) {
        const members = [...squatted];
        for (const member of members) removeMember(member, username);
        // Each member hears only of its own leaving: the group is gone for all.
        for (const member of members) local.notify([member], membershipEvent("member-left", username, member.username, ["group-deleted", ""]));
      }
      const session = createBackendSession(username, limits, schedule, budget, history === undefined ? {} : { history });
      local.setOptIns(session, options);
      local.add(session);
      sorted = undefined;
      local.presenceChanged({ name: username, type: "user" }, true);
      return session;
    },

    resume(username, request) {
      assertValidName(username, "username");
      const session = local.get(username);
      if (session === undefined) throw chatErrors.noSessionToResume(username);
      const { lost, stream } = resumeSession(session, request);
      local.unhold(session);
      local.setOptIns(session, request);
      return { session, resumed: true, lost, stream };
    },

    hold(chatSession, reason) {
      // See disconnect: a BackendSession behind the public type.
      const session = chatSession as BackendSession;
      if (resumeGraceMs === 0 || session.signal.aborted || local.get(session.username) !== session) {
        disconnect(session, reason);
        return;
      }
      local.hold(session, resumeGraceMs, () => disconnect(session, chatErrors.resumeGraceOver(session.username, resumeGraceMs, reason)));
    },

    disconnect,

    isOnline(username) {
      return local.get(username) !== undefined;
    },

    createGroup(callerName, name) {
      const session = caller(callerName);
      assertValidName(name, "group name");
      if (local.members(name) !== undefined) {
        throw chatErrors.groupExists(name);
      }
      if (local.get(name) !== undefined) {
        throw chatErrors.groupIsUser(name);
      }
      if (groupCount >= maxGroups) {
        throw chatErrors.tooManyGroupsInTotal(maxGroups);
      }
      assertRoomForGroup(session);
      local.addMember(name, session);
      groupCount++;
      sorted = undefined;
      local.presenceChanged({ name, type: "group" }, true);
      local.notify([session], membershipEvent("member-joined", name, callerName));
    },

    joinGroup(callerName, name) {
      const session = caller(callerName);
      const members = existingGroup(name);
      if (members.has(session)) {
        throw chatErrors.alreadyMember(callerName, name);
      }
      assertRoomForGroup(session);
      local.addMember(name, session);
      local.notify(members, membershipEvent("member-joined", name, callerName));
    },

    leaveGroup(callerName, name) {
      const session = caller(callerName);
      const members = existingGroup(name);
      if (!members.has(session)) {
        throw chatErrors.notAMember(callerName, name);
      }
      // The leaver hears of it too, before it is gone.
      local.notify(members, membershipEvent("member-left", name, callerName, ["left", ""]));
      removeMember(session, name);
    },

    send(callerName, channel, text, requestId = "") {
      const session = caller(callerName);
      assertValidName(channel, "channel");
      const textBytes = measureText(text);
      checkRequestId(requestId);
      const sent = requestId === "" ? undefined : dedup.get(callerName, requestId);
      if (sent !== undefined) return replayOf(sent, { sender: callerName, channel, text, requestId });
      const [type, recipients] = recipientsOf(session, channel);
      const event: ChatEvent = {
        kind: "message",
        id: newId(),
        sender: callerName,
        channel: { name: channel, type },
        text,
        textBytes,
        sentAt: now(),
        holders: 0,
      };
      // Kept before it is queued: a reader that fetches history on its first event finds it there.
      if (type === "group") messages.appendGroup(channel, event);
      else messages.appendDirect(callerName, channel, event);
      local.deliver(recipients, event);
      if (requestId !== "") dedup.remember(callerName, requestId, event);
      return event;
    },

    listMessages(callerName, channel, page) {
      const session = caller(callerName);
      assertValidName(channel, "channel");
      if (!messages.enabled) throw chatErrors.historyOff();
      const members = local.members(channel);
      if (members !== undefined) {
        if (!members.has(session)) throw chatErrors.mustJoinToRead(callerName, channel);
        return messages.groupPage(channel, page);
      }
      if (local.get(channel) === undefined && !messages.hasDirect(callerName, channel)) throw chatErrors.noSuchChannel(channel);
      return messages.directPage(callerName, channel, page);
    },

    listChannels(page) {
      if (sorted === undefined) {
        const channels: ChannelRef[] = [];
        for (const session of local.all()) {
          channels.push({ name: session.username, type: "user" });
        }
        for (const name of local.groups()) {
          channels.push({ name, type: "group" });
        }
        sorted = sortChannels(channels);
      }
      return pageOf(sorted, page);
    },

    listMembers(callerName, name, page) {
      const session = caller(callerName);
      const members = existingGroup(name);
      if (!members.has(session)) throw chatErrors.mustJoinToList(callerName, name);
      return pageOfNames(
        Array.from(members, (member) => member.username),
        page,
      );
    },

    stats() {
      return { users: local.size, groups: groupCount };
    },

    history: messages,
    ...(messages.enabled ? { localHistory: messages } : {}),
    dedup,

    close() {
      local.close();
      messages.close();
    },
  };
}
