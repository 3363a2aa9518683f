import type { BackendSession } from "./backend-session.js";
import { type ChatError, chatErrors } from "./chat-error.js";
import type { ChatSession } from "./chat-session.js";
import { type EventOptIns, grantOptIns } from "./event-opt-ins.js";
import type { MessageHistory } from "./message-history.js";
import { createPresenceFeed, type PresenceFeed } from "./presence-feed.js";
import { enforceQueueBudget, type QueueBudget } from "./queue-budget.js";
import type { ChannelRef, MembershipEvent, SessionEvent } from "./session-event.js";

/** Settings of {@link createLocalSessions}. */
export interface LocalSessionsOptions {
  /** The bytes all of this process's queues may hold together. */
  budget: QueueBudget;
  /** How often presence changes are handed to watchers, coalesced; 0 switches presence off. */
  presenceIntervalMs: number;
  /** The message history that shares the budget: it gives up its oldest before any stream is cut off. */
  history?: Pick<MessageHistory, "shed">;
  /**
   * Ends a session for good, releasing its name and groups wherever the
   * backend keeps them: its queue overflowed, the budget was over, or its
   * resume grace ran out.
   */
  cutOff(session: BackendSession, reason: ChatError): void;
}

/**
 * The sessions one process holds, and what happens to them locally: the
 * session of each name, which of them are in which group, the timers of
 * those held for a resume, the presence feed of those that asked for it,
 * and delivery into their queues under the process's memory budget. Both
 * backends are built on it: in memory it is the whole chat; in cluster mode
 * it is this node's share, and shared state lives in Redis.
 */
export interface LocalSessions {
  /** Whether presence events are on. */
  readonly presence: boolean;
  /** How many sessions are held. */
  readonly size: number;
  /** The session of a username. */
  get(username: string): BackendSession | undefined;
  /** Every session held. */
  all(): IterableIterator<BackendSession>;
  /** Registers a session under its name, replacing none (the name must be free here). */
  add(session: BackendSession): void;
  /**
   * Forgets a session: its timer, its presence, its group memberships here.
   * Answers whether it was the one registered under its name.
   */
  remove(session: BackendSession): boolean;
  /** Sets what the session asked to receive; presence only when it is on. */
  setOptIns(session: BackendSession, optIns: EventOptIns): void;
  /** Whether a session's stream dropped and it waits for a resume. */
  isHeld(session: ChatSession): boolean;
  /** Holds a session for graceMs, then calls over. */
  hold(session: BackendSession, graceMs: number, over: () => void): void;
  /** Ends a hold, as when the session is resumed. */
  unhold(session: BackendSession): void;
  /** The sessions held here that are members of a group, in the order they joined; undefined when none. */
  members(group: string): ReadonlySet<BackendSession> | undefined;
  /** The groups that have a member here. */
  groups(): IterableIterator<string>;
  /** Makes a session a member of a group here. */
  addMember(group: string, session: BackendSession): void;
  /** Removes a session from a group here; answers whether the group has no member here left. */
  removeMember(group: string, session: BackendSession): boolean;
  /**
   * Queues one event for each recipient; cuts off those whose queue is
   * full, then the largest if the process's total is over its budget.
   */
  deliver(recipients: Iterable<BackendSession>, event: SessionEvent): void;
  /** Queues a membership event for those of the sessions that asked for membership events. */
  notify(sessions: Iterable<BackendSession>, event: MembershipEvent): void;
  /** Feeds a presence change to the watchers, coalesced. */
  presenceChanged(channel: ChannelRef, present: boolean): void;
  /** Ends every session, as when shared state is lost: their clients reconnect. */
  endAll(reason: ChatError): void;
  /** Stops the hold timers and the presence feed. */
  close(): void;
}

/** Creates the sessions of one process. */
export function createLocalSessions(options: LocalSessionsOptions): LocalSessions {
  return new LocalSessionsImpl(options);
}

/** The one LocalSessions: sessions by name, local group members, hold timers, presence watchers and their feed. */
class LocalSessionsImpl implements LocalSessions {
  readonly presence: boolean;
  private readonly sessions = new Map<string, BackendSession>();
  // Members keep the order in which they joined.
  private readonly groupMembers = new Map<string, Set<BackendSession>>();
  private readonly held = new Map<ChatSession, NodeJS.Timeout>();
  private readonly presenceWatchers = new Set<BackendSession>();
  private readonly feed: PresenceFeed | undefined;
  private readonly budget: QueueBudget;
  private readonly history: Pick<MessageHistory, "shed"> | undefined;
  private readonly cutOff: (session: BackendSession, reason: ChatError) => void;

  constructor(options: LocalSessionsOptions) {
    this.budget = options.budget;
    this.history = options.history;
    this.cutOff = options.cutOff;
    this.feed =
      options.presenceIntervalMs > 0
        ? createPresenceFeed({ intervalMs: options.presenceIntervalMs, publish: (event) => this.deliver(this.presenceWatchers, event) })
        : undefined;
    this.presence = this.feed !== undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  get(username: string): BackendSession | undefined {
    return this.sessions.get(username);
  }

  all(): IterableIterator<BackendSession> {
    return this.sessions.values();
  }

  add(session: BackendSession): void {
    this.sessions.set(session.username, session);
  }

  remove(session: BackendSession): boolean {
    this.unhold(session);
    this.presenceWatchers.delete(session);
    for (const group of session.groups) this.removeMember(group, session);
    if (this.sessions.get(session.username) !== session) return false;
    this.sessions.delete(session.username);
    return true;
  }

  setOptIns(session: BackendSession, optIns: EventOptIns): void {
    session.optIns = grantOptIns(optIns, this.feed !== undefined);
    if (session.optIns.presence === true) this.presenceWatchers.add(session);
    else this.presenceWatchers.delete(session);
  }

  isHeld(session: ChatSession): boolean {
    return this.held.has(session);
  }

  hold(session: BackendSession, graceMs: number, over: () => void): void {
    clearTimeout(this.held.get(session));
    const timer = setTimeout(over, graceMs);
    timer.unref();
    this.held.set(session, timer);
  }

  unhold(session: BackendSession): void {
    clearTimeout(this.held.get(session));
    this.held.delete(session);
  }

  members(group: string): ReadonlySet<BackendSession> | undefined {
    return this.groupMembers.get(group);
  }

  groups(): IterableIterator<string> {
    return this.groupMembers.keys();
  }

  addMember(group: string, session: BackendSession): void {
    let members = this.groupMembers.get(group);
    if (members === undefined) {
      members = new Set();
      this.groupMembers.set(group, members);
    }
    members.add(session);
    session.addGroup(group);
  }

  removeMember(group: string, session: BackendSession): boolean {
    session.removeGroup(group);
    const members = this.groupMembers.get(group);
    if (members === undefined) return true;
    members.delete(session);
    if (members.size > 0) return false;
    this.groupMembers.delete(group);
    return true;
  }

  deliver(recipients: Iterable<BackendSession>, event: SessionEvent): void {
    const { budget, cutOff } = this;
    let behind: [BackendSession, ChatError][] | undefined;
    for (const session of recipients) {
      const overflow = session.push(event);
      if (overflow !== undefined) {
        behind ??= [];
        behind.push([session, overflow]);
      }
    }
    // Cut off after the loop: ending a session edits the sets being iterated.
    for (const [session, reason] of behind ?? []) cutOff(session, reason);
    enforceQueueBudget(
      budget,
      () => this.sessions.values(),
      (session) => cutOff(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes)),
      this.history,
    );
  }

  notify(sessions: Iterable<BackendSession>, event: MembershipEvent): void {
    const watchers: BackendSession[] = [];
    for (const session of sessions) {
      if (session.optIns.membership === true) watchers.push(session);
    }
    if (watchers.length > 0) this.deliver(watchers, event);
  }

  presenceChanged(channel: ChannelRef, present: boolean): void {
    this.feed?.changed(channel, present);
  }

  endAll(reason: ChatError): void {
    const sessions = [...this.sessions.values()];
    for (const session of sessions) this.remove(session);
    for (const session of sessions) session.end(reason);
  }

  close(): void {
    for (const timer of this.held.values()) clearTimeout(timer);
    this.held.clear();
    this.feed?.close();
  }
}
