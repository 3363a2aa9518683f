import type { BackendSession } from "../core/backend-session.js";
import { type ChatError, chatErrors } from "../core/chat-error.js";
import { type EventOptIns, grantOptIns } from "../core/event-opt-ins.js";
import { createPresenceFeed, type PresenceFeed } from "../core/presence-feed.js";
import { enforceQueueBudget, type QueueBudget } from "../core/queue-budget.js";
import type { SessionEvent } from "../core/session-event.js";
import type { PresenceChange } from "./delivery.js";

/** Settings of {@link createNodeSessions}. */
export interface NodeSessionsOptions {
  /** The bytes all of this node's queues may hold together. */
  budget: QueueBudget;
  /** How often presence changes are handed to watchers, coalesced; 0 switches presence off. */
  presenceIntervalMs: number;
  /**
   * Ends a session for good, releasing its name in Redis too: its queue
   * overflowed, or its resume grace ran out.
   */
  cutOff(session: BackendSession, reason: ChatError): void;
}

/**
 * The sessions one cluster node holds, and what happens to them locally:
 * deliveries into their queues, the timers of those held for a resume, and
 * the presence feed of those that asked for presence. Redis is the
 * backend's business; this is only the node's memory.
 */
export interface NodeSessions {
  /** Whether presence events are on. */
  readonly presence: boolean;
  /** The session of a username on this node. */
  get(username: string): BackendSession | undefined;
  /**
   * Registers a session (its name free on this node) before Redis gives it
   * the name: until started(), deliveries to its name are for an earlier
   * session of that name and are not its own.
   */
  add(session: BackendSession): void;
  /** The session's start mark came, in the node's channel's order: deliveries to its name are its own from now on. */
  started(session: BackendSession): void;
  /** Forgets a session and its timer; answers whether it was the one registered under its name. */
  remove(session: BackendSession): boolean;
  /** Sets what the session asked to receive; presence only when it is on. */
  setOptIns(session: BackendSession, optIns: EventOptIns): void;
  /** Whether a session's stream dropped and it waits for a resume. */
  isHeld(session: BackendSession): boolean;
  /** Holds a session for graceMs, then calls over. */
  hold(session: BackendSession, graceMs: number, over: () => void): void;
  /** Ends a hold, as when the session is resumed. */
  unhold(session: BackendSession): void;
  /**
   * Queues an event for the named users of this node: each recipient's
   * event comes from eventFor. A membership event goes only to sessions
   * that asked for membership events.
   */
  deliver(to: readonly string[], eventFor: (recipient: string) => SessionEvent, membership: boolean): void;
  /** Feeds presence changes to the watchers, coalesced. */
  presenceChanged(changes: readonly PresenceChange[]): void;
  /** Ends every session, as when Redis is lost: their clients reconnect. */
  endAll(reason: ChatError): void;
  /** Stops the hold timers and the presence feed. */
  close(): void;
}

/** Creates the sessions of one node. */
export function createNodeSessions(options: NodeSessionsOptions): NodeSessions {
  return new NodeSessionsImpl(options);
}

/** The one NodeSessions: its sessions by name, the hold timers, and the presence watchers with their feed. */
class NodeSessionsImpl implements NodeSessions {
  readonly presence: boolean;
  private readonly sessions = new Map<string, BackendSession>();
  private readonly held = new Map<BackendSession, NodeJS.Timeout>();
  /** Sessions registered here whose start mark has not come yet. */
  private readonly starting = new Set<BackendSession>();
  private readonly presenceWatchers = new Set<BackendSession>();
  private readonly feed: PresenceFeed | undefined;
  private readonly budget: QueueBudget;
  private readonly cutOff: (session: BackendSession, reason: ChatError) => void;

  constructor(options: NodeSessionsOptions) {
    this.budget = options.budget;
    this.cutOff = options.cutOff;
    this.feed =
      options.presenceIntervalMs > 0
        ? createPresenceFeed({ intervalMs: options.presenceIntervalMs, publish: (event) => this.push(this.presenceWatchers, () => event) })
        : undefined;
    this.presence = this.feed !== undefined;
  }

  /** Pushes into each session its event; cuts off those whose queue is full, then the largest if the node's total is over. */
  private push(recipients: Iterable<BackendSession>, eventFor: (session: BackendSession) => SessionEvent): void {
    const { budget, cutOff } = this;
    let behind: [BackendSession, ChatError][] | undefined;
    for (const session of recipients) {
      const overflow = session.push(eventFor(session));
      if (overflow !== undefined) {
        behind ??= [];
        behind.push([session, overflow]);
      }
    }
    // Cut off after the loop: it edits the sets being iterated.
    for (const [session, reason] of behind ?? []) cutOff(session, reason);
    enforceQueueBudget(
      budget,
      () => this.sessions.values(),
      (session) => cutOff(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes)),
    );
  }

  get(username: string): BackendSession | undefined {
    return this.sessions.get(username);
  }

  add(session: BackendSession): void {
    this.sessions.set(session.username, session);
    this.starting.add(session);
  }

  started(session: BackendSession): void {
    this.starting.delete(session);
  }

  remove(session: BackendSession): boolean {
    this.unhold(session);
    this.starting.delete(session);
    this.presenceWatchers.delete(session);
    if (this.sessions.get(session.username) !== session) return false;
    this.sessions.delete(session.username);
    return true;
  }

  setOptIns(session: BackendSession, optIns: EventOptIns): void {
    session.optIns = grantOptIns(optIns, this.feed !== undefined);
    if (session.optIns.presence === true) this.presenceWatchers.add(session);
    else this.presenceWatchers.delete(session);
  }

  isHeld(session: BackendSession): boolean {
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

  deliver(to: readonly string[], eventFor: (recipient: string) => SessionEvent, membership: boolean): void {
    const recipients: BackendSession[] = [];
    for (const name of to) {
      const session = this.sessions.get(name);
      // The scripts address membership events to watchers; a resume that
      // just said no more is honoured here before Redis hears of it.
      // A session not started yet: the delivery was published before Redis gave it the name, for an earlier session.
      if (session === undefined || this.starting.has(session)) continue;
      if (!membership || session.optIns.membership === true) recipients.push(session);
    }
    this.push(recipients, (session) => eventFor(session.username));
  }

  presenceChanged(changes: readonly PresenceChange[]): void {
    if (this.feed === undefined) return;
    for (const { channel, present } of changes) this.feed.changed(channel, present);
  }

  endAll(reason: ChatError): void {
    for (const session of [...this.sessions.values()]) {
      this.sessions.delete(session.username);
      this.unhold(session);
      this.presenceWatchers.delete(session);
      this.starting.delete(session);
      session.end(reason);
    }
  }

  close(): void {
    for (const timer of this.held.values()) clearTimeout(timer);
    this.held.clear();
    this.feed?.close();
  }
}
