import type { BackendSession } from "../core/backend-session.js";
import { type ChatError, chatErrors } from "../core/chat-error.js";
import { type EventOptIns, grantOptIns } from "../core/event-opt-ins.js";
import { createPresenceFeed } from "../core/presence-feed.js";
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
  /** Registers a session (its name free on this node). */
  add(session: BackendSession): void;
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
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: a factory: the methods it returns are short closures over the state they share, which splitting it would have to pass around.
export function createNodeSessions(options: NodeSessionsOptions): NodeSessions {
  const { budget, cutOff } = options;
  const sessions = new Map<string, BackendSession>();
  const held = new Map<BackendSession, NodeJS.Timeout>();
  const presenceWatchers = new Set<BackendSession>();
  const feed =
    options.presenceIntervalMs > 0
      ? createPresenceFeed({ intervalMs: options.presenceIntervalMs, publish: (event) => push(presenceWatchers, () => event) })
      : undefined;

  /** Pushes into each session its event; cuts off those whose queue is full, then the largest if the node's total is over. */
  function push(recipients: Iterable<BackendSession>, eventFor: (session: BackendSession) => SessionEvent): void {
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
      () => sessions.values(),
      (session) => cutOff(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes)),
    );
  }

  function unhold(session: BackendSession): void {
    clearTimeout(held.get(session));
    held.delete(session);
  }

  return {
    presence: feed !== undefined,
    get: (username) => sessions.get(username),
    add(session) {
      sessions.set(session.username, session);
    },
    remove(session) {
      unhold(session);
      presenceWatchers.delete(session);
      if (sessions.get(session.username) !== session) return false;
      sessions.delete(session.username);
      return true;
    },
    setOptIns(session, optIns) {
      session.optIns = grantOptIns(optIns, feed !== undefined);
      if (session.optIns.presence === true) presenceWatchers.add(session);
      else presenceWatchers.delete(session);
    },
    isHeld: (session) => held.has(session),
    hold(session, graceMs, over) {
      clearTimeout(held.get(session));
      const timer = setTimeout(over, graceMs);
      timer.unref();
      held.set(session, timer);
    },
    unhold,
    deliver(to, eventFor, membership) {
      const recipients: BackendSession[] = [];
      for (const name of to) {
        const session = sessions.get(name);
        // The scripts address membership events to watchers; a resume that
        // just said no more is honoured here before Redis hears of it.
        if (session !== undefined && (!membership || session.optIns.membership === true)) recipients.push(session);
      }
      push(recipients, (session) => eventFor(session.username));
    },
    presenceChanged(changes) {
      if (feed === undefined) return;
      for (const { channel, present } of changes) feed.changed(channel, present);
    },
    endAll(reason) {
      for (const session of [...sessions.values()]) {
        sessions.delete(session.username);
        unhold(session);
        presenceWatchers.delete(session);
        session.end(reason);
      }
    },
    close() {
      for (const timer of held.values()) clearTimeout(timer);
      held.clear();
      feed?.close();
    },
  };
}
