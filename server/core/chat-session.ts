import { randomBytes, timingSafeEqual } from "node:crypto";
import { ChatError, chatErrors } from "./chat-error.js";

/** Where a message was sent: a group, or for a direct message its recipient. */
export interface ChannelRef {
  readonly name: string;
  readonly type: "user" | "group";
}

/** What every event a session queues carries, for the queue's bookkeeping. */
interface QueuedEvent {
  /** The size in bytes of UTF-8 of the event's text (or names), measured once. */
  readonly textBytes: number;
  /**
   * How many queues (or responses not yet written, or resume histories) hold
   * this event: the core's bookkeeping, so that an event shared by many
   * sessions counts once in the server's total.
   */
  holders?: number;
}

/**
 * One message as the core sees it. A group message is a single object shared
 * by the queues of all its recipients, never copied per member.
 */
export interface ChatEvent extends QueuedEvent {
  readonly kind: "message";
  readonly id: string;
  readonly sender: string;
  readonly channel: ChannelRef;
  readonly text: string;
  readonly sentAt: Date;
}

/** Why a member is no longer in a group. */
export type LeaveReason = "left" | "disconnected" | "cut-off" | "group-deleted";

/**
 * A member joined or left a group: queued, in order with the group's
 * messages, for the members that asked for membership events.
 */
export interface MembershipEvent extends QueuedEvent {
  readonly kind: "member-joined" | "member-left";
  readonly group: string;
  readonly username: string;
  /** Why it left; only for "member-left". */
  readonly reason?: LeaveReason;
  /** The server's words on why, for people. */
  readonly detail?: string;
}

/**
 * Channels that came and went over one presence interval, coalesced: one
 * object shared by every session that asked for presence.
 */
export interface PresenceEvent extends QueuedEvent {
  readonly kind: "channels-changed";
  readonly added: readonly ChannelRef[];
  readonly removed: readonly ChannelRef[];
}

/** Anything a session's stream delivers after Connected. */
export type SessionEvent = ChatEvent | MembershipEvent | PresenceEvent;

/** What a session's client asked to receive besides messages. */
export interface EventOptIns {
  /** MemberJoined and MemberLeft for its groups. */
  membership?: boolean;
  /** ChannelsChanged. */
  presence?: boolean;
}

/**
 * A connected user's end of the chat: a bounded queue of events waiting to be
 * read by its stream, and a signal that aborts when the session ends.
 */
export interface ChatSession {
  /** The username this session holds while it is live. */
  readonly username: string;
  /**
   * Aborts once the session has ended, with a ChatError as its reason when the
   * core ended it (the client fell behind) or with the reason given to
   * {@link ChatSession.end}.
   */
  readonly signal: AbortSignal;
  /** How many events are waiting to be taken. */
  readonly pending: number;
  /**
   * What this session holds, in bytes (see {@link queuedEventBytes}): the
   * events waiting, and those taken but not yet written.
   */
  readonly pendingBytes: number;
  /**
   * Removes and returns the oldest waiting events, in order: at most
   * maxEvents of them, and no more than maxTextBytes of text unless a single
   * event is larger on its own. Returns an empty array when none wait.
   */
  take(maxEvents: number, maxTextBytes: number): SessionEvent[];
  /**
   * Says that the events taken last have been written (or will never be):
   * until then they still count against the session's bytes and the
   * server's total, since the response that carries them is held in memory.
   */
  written(): void;
  /**
   * Resolves once an event is waiting or the session has ended, not before
   * the end of the turn in which that happened. It never rejects. To stop
   * waiting for another reason, end the session.
   */
  wait(): Promise<void>;
  /**
   * The secret that resumes this session after its stream dropped; undefined
   * when the backend holds no dropped sessions.
   */
  readonly resumeToken: string | undefined;
  /** What the client asked to receive besides messages. */
  readonly optIns: Readonly<EventOptIns>;
  /**
   * Ties a new stream to the session, for sessions that can be resumed: the
   * signal it returns aborts when another stream takes the session over (or
   * the session ends), and the stream must then stop taking events. The
   * stream that was reading is woken so that it sees this at once.
   */
  attachStream(): AbortSignal;
}

/**
 * The core's own view of a session: the public one plus what only a backend
 * touches.
 */
export interface SessionState extends ChatSession {
  /** The groups the user is a member of, by name. */
  readonly groups: Set<string>;
  /**
   * Queues an event. When the queue is full (in events or in bytes) it stays
   * as it was, and the error to cut the session off with comes back instead.
   */
  push(event: SessionEvent): ChatError | undefined;
  /** Ends the session once; later calls do nothing. Drops what is queued. */
  end(reason: unknown): void;
  /** What the client asked to receive; a resume replaces it. */
  optIns: EventOptIns;
  /**
   * Puts back, before the waiting events, those delivered after the first
   * `received` (as far as the history still holds them), for a resumed
   * stream, and returns how many of them the history no longer held. Returns
   * undefined, changing nothing, when received is more than the session ever
   * delivered.
   */
  rewind(received: number): number | undefined;
  /** Drops the resume history, to give its memory back. */
  dropHistory(): void;
  /** Whether the token is this session's resume token (compared in constant time). */
  hasResumeToken(token: string): boolean;
}

/** The defaults of a resumable session's history. */
export const defaultResumeHistory: HistoryLimits = { events: 256, bytes: 256 * 1024 };

/** The opt-ins of a session that asked for nothing besides messages, shared by all of them. */
const noOptIns: Readonly<EventOptIns> = Object.freeze({ membership: false, presence: false });

/** What a session gets of what it asked for: presence only when the server has it on. */
export function grantOptIns(asked: EventOptIns, presenceOn: boolean): Readonly<EventOptIns> {
  const membership = asked.membership === true;
  const presence = asked.presence === true && presenceOn;
  return membership || presence ? { membership, presence } : noOptIns;
}

/**
 * Gives a session to the stream that presents its resume token: the events
 * after the first `received` wait again, and the stream that had it is told
 * it lost it. Throws "not-found" for another token and "invalid-input" for a
 * count the session never reached, changing nothing. Rewinding comes first,
 * in the same turn as the takeover, so that the old stream cannot take
 * events in between.
 */
export function takeBack(session: SessionState, request: { token: string; received: number }): { lost: number; stream: AbortSignal } {
  if (!session.hasResumeToken(request.token)) throw chatErrors.noSessionToResume(session.username);
  const lost = session.rewind(request.received);
  if (lost === undefined) throw chatErrors.receivedTooMany(session.username, request.received);
  return { lost, stream: session.attachStream() };
}

/** How much of what a resumable session delivered it keeps for a resume. */
export interface HistoryLimits {
  /** Events kept after they were delivered. */
  events: number;
  /** Bytes (see {@link queuedEventBytes}) of those events. */
  bytes: number;
}

/**
 * What one event costs in memory, measured rather than guessed: V8 keeps a
 * string of any character past Latin-1 at two bytes a character (so at most
 * twice its UTF-8 size), and the event object with its id, names, channel and
 * timestamp takes about 700 bytes (a heap snapshot of 655,200 one-byte
 * direct messages gave 740 each).
 */
export function queuedEventBytes(event: SessionEvent): number {
  return 2 * event.textBytes + 700;
}

/** The bounds of one session's queue. */
export interface QueueLimits {
  /** Events that may wait before the session is cut off. */
  events: number;
  /** Bytes (see {@link queuedEventBytes}) that may wait before the session is cut off. */
  bytes: number;
}

/**
 * The bytes queued for all the sessions of one process, against a limit:
 * sessions add what they queue and release what is taken or dropped, and
 * the backend cuts off the largest queues when the total goes over.
 */
export interface QueueBudget {
  readonly limitBytes: number;
  usedBytes: number;
}

/** Creates a budget of limitBytes for all queues together. */
export function createQueueBudget(limitBytes: number): QueueBudget {
  return { limitBytes, usedBytes: 0 };
}

/**
 * Brings a budget back under its limit by cutting off the sessions that hold
 * the most, largest first: one reader that stopped reading must not take the
 * memory every other user needs. Resume histories are dropped before any
 * session is cut off. Scans the sessions (a fresh iteration each time:
 * cutting one off changes them) only when over.
 */
export function enforceQueueBudget(budget: QueueBudget, sessions: () => Iterable<SessionState>, cutOff: (session: SessionState) => void): void {
  if (budget.usedBytes <= budget.limitBytes) return;
  // Resume histories are a convenience: they go first, before any stream is cut off.
  for (const session of sessions()) session.dropHistory();
  while (budget.usedBytes > budget.limitBytes) {
    let largest: SessionState | undefined;
    for (const session of sessions()) {
      if (!session.signal.aborted && (largest === undefined || session.pendingBytes > largest.pendingBytes)) largest = session;
    }
    if (largest === undefined || largest.pendingBytes === 0) return;
    cutOff(largest);
  }
}

/**
 * Runs callbacks once the current turn of the event loop is over, all of
 * them together.
 */
export type WakeScheduler = (wake: () => void) => void;

/**
 * Creates a WakeScheduler that defers callbacks to one setImmediate per turn.
 * A session's reader is woken this way rather than at once, so that every
 * message sent in the same turn (the requests that arrived in one read from
 * a socket) is queued before the reader takes its batch: one response then
 * carries them all, where waking at once would send one response per message
 * per member, and the per-response cost dominates a large group's fan-out.
 */
export function createWakeScheduler(): WakeScheduler {
  let pending: (() => void)[] = [];
  const flush = () => {
    const wakes = pending;
    pending = [];
    for (const wake of wakes) wake();
  };
  return (wake) => {
    if (pending.push(wake) === 1) setImmediate(flush);
  };
}

/** Wakes at once; for tests of the session alone. */
const wakeNow: WakeScheduler = (wake) => wake();

/** What a session may be given besides its queue. */
export interface SessionExtras {
  /** What the client asked to receive besides messages. */
  optIns?: EventOptIns;
  /**
   * Makes the session resumable: it gets a resume token, and keeps this much
   * of what it delivered so that a resumed stream can replay it.
   */
  history?: HistoryLimits;
}

/**
 * Creates the state of one session whose queue holds at most limits.events
 * events and limits.bytes bytes, counted in the budget too, whose reader is
 * woken through the scheduler.
 */
export function createSessionState(
  username: string,
  limits: QueueLimits,
  schedule: WakeScheduler = wakeNow,
  budget: QueueBudget = createQueueBudget(Number.POSITIVE_INFINITY),
  extras: SessionExtras = {},
): SessionState {
  return new Session(username, limits, schedule, budget, extras);
}

class Session implements SessionState {
  readonly groups = new Set<string>();
  optIns: EventOptIns;
  readonly resumeToken: string | undefined;
  private readonly controller = new AbortController();
  // A FIFO as an array with a moving head: shift() would be O(n) per event.
  private items: SessionEvent[] = [];
  private head = 0;
  private bytes = 0;
  // The batch taken last, held until written() says its response is out.
  private inFlight: SessionEvent[] = [];
  private waiter: (() => void) | undefined;
  private wakeScheduled = false;
  private readonly wakeWaiter = () => {
    this.wakeScheduled = false;
    this.waiter?.();
  };
  // Resumable sessions only: what was delivered, oldest first, kept within
  // historyLimits; how many events were delivered in all; the stream reading.
  private readonly historyLimits: HistoryLimits | undefined;
  // Allocated on first use: most sessions are not resumable.
  private history: SessionEvent[] | undefined;
  private historyHead = 0;
  private historyBytes = 0;
  private delivered = 0;
  private stream: AbortController | undefined;

  constructor(
    readonly username: string,
    private readonly limits: QueueLimits,
    private readonly schedule: WakeScheduler,
    private readonly budget: QueueBudget,
    extras: SessionExtras,
  ) {
    this.optIns = extras.optIns ?? noOptIns;
    // Never more history than the queue holds: a resume puts it back in the queue.
    this.historyLimits =
      extras.history === undefined
        ? undefined
        : { events: Math.min(extras.history.events, limits.events), bytes: Math.min(extras.history.bytes, limits.bytes) };
    this.resumeToken = extras.history === undefined ? undefined : randomBytes(24).toString("base64url");
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get pending(): number {
    return this.items.length - this.head;
  }

  get pendingBytes(): number {
    return this.bytes;
  }

  push(event: SessionEvent): ChatError | undefined {
    if (this.controller.signal.aborted) {
      // Nobody will read it; the sender need not know.
      return undefined;
    }
    if (this.items.length - this.head >= this.limits.events) {
      return chatErrors.fellBehind(this.username, `${this.limits.events} events were waiting to be read`);
    }
    const size = queuedEventBytes(event);
    if (this.bytes + size > this.limits.bytes) {
      return chatErrors.fellBehind(this.username, `${this.bytes + size} bytes were waiting to be read, more than the ${this.limits.bytes} allowed`);
    }
    this.items.push(event);
    this.hold(event, size);
    this.wake();
    return undefined;
  }

  /** Counts an event against this session, and against the total unless another queue holds it already. */
  private hold(event: SessionEvent, size: number): void {
    this.bytes += size;
    event.holders = (event.holders ?? 0) + 1;
    if (event.holders === 1) this.budget.usedBytes += size;
  }

  private release(events: readonly SessionEvent[], from = 0, to = events.length): void {
    for (let i = from; i < to; i++) {
      this.bytes -= this.unhold(events[i]!);
    }
  }

  /** Stops counting an event against the total once no queue holds it; returns its size. */
  private unhold(event: SessionEvent): number {
    const size = queuedEventBytes(event);
    event.holders = (event.holders ?? 1) - 1;
    if (event.holders === 0) this.budget.usedBytes -= size;
    return size;
  }

  written(): void {
    if (this.inFlight.length === 0) return;
    if (this.historyLimits === undefined) {
      this.release(this.inFlight);
    } else {
      // Written is not received: the events stay held, in the history.
      this.history ??= [];
      for (const event of this.inFlight) {
        const size = queuedEventBytes(event);
        this.bytes -= size;
        this.historyBytes += size;
        this.history.push(event);
      }
      this.trimHistory(this.historyLimits.events, this.historyLimits.bytes);
    }
    this.inFlight = [];
  }

  private trimHistory(maxEvents: number, maxBytes: number): void {
    const history = this.history;
    if (history === undefined) return;
    while (history.length - this.historyHead > maxEvents || (this.historyBytes > maxBytes && history.length > this.historyHead)) {
      this.historyBytes -= this.unhold(history[this.historyHead]!);
      this.historyHead++;
    }
    if (this.historyHead === history.length) {
      this.history = undefined;
      this.historyHead = 0;
    } else if (this.historyHead > 1024 && this.historyHead * 2 > history.length) {
      this.history = history.slice(this.historyHead);
      this.historyHead = 0;
    }
  }

  dropHistory(): void {
    this.trimHistory(0, 0);
  }

  rewind(received: number): number | undefined {
    if (!Number.isSafeInteger(received) || received < 0 || received > this.delivered) return undefined;
    // Everything delivered and still held, oldest first: the history, then the batch in flight.
    const held = [...(this.history?.slice(this.historyHead) ?? []), ...this.inFlight];
    const firstHeld = this.delivered - held.length;
    const lost = Math.max(0, firstHeld - received);
    const replay = held.slice(Math.max(0, received - firstHeld));
    // What is neither replayed nor waiting any more is no longer held.
    for (const event of held.slice(0, held.length - replay.length)) this.unhold(event);
    // The bytes counted the waiting events and the batch in flight; they now
    // count the waiting events and the replay.
    for (const event of this.inFlight) this.bytes -= queuedEventBytes(event);
    for (const event of replay) this.bytes += queuedEventBytes(event);
    this.history = undefined;
    this.historyHead = 0;
    this.historyBytes = 0;
    this.inFlight = [];
    this.items = [...replay, ...this.items.slice(this.head)];
    this.head = 0;
    this.delivered -= replay.length;
    if (replay.length > 0) this.wake();
    return lost;
  }

  hasResumeToken(token: string): boolean {
    if (this.resumeToken === undefined) return false;
    const a = Buffer.from(this.resumeToken);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  attachStream(): AbortSignal {
    this.stream?.abort(chatErrors.resumedElsewhere(this.username));
    const stream = new AbortController();
    this.stream = stream;
    // The reader waiting, if any, is the stream just taken over: let it see so.
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
    if (this.controller.signal.aborted) stream.abort(this.controller.signal.reason);
    return stream.signal;
  }

  take(maxEvents: number, maxTextBytes: number): SessionEvent[] {
    // A caller that did not say the last batch was written is done with it.
    this.written();
    const available = this.items.length - this.head;
    if (available === 0) {
      return [];
    }
    let count = 0;
    let bytes = 0;
    const limit = Math.min(available, maxEvents);
    while (count < limit) {
      const event = this.items[this.head + count]!;
      bytes += event.textBytes;
      if (bytes > maxTextBytes && count > 0) {
        break;
      }
      count++;
    }
    if (count === available) {
      const all = this.head === 0 ? this.items : this.items.slice(this.head);
      this.items = [];
      this.head = 0;
      this.inFlight = all;
      this.delivered += all.length;
      return all;
    }
    const taken = this.items.slice(this.head, this.head + count);
    this.inFlight = taken;
    this.delivered += count;
    this.head += count;
    // Reclaim the consumed prefix once it is the larger part of the array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  wait(): Promise<void> {
    if (this.items.length > this.head || this.controller.signal.aborted) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.waiter = () => {
        this.waiter = undefined;
        resolve();
      };
    });
  }

  end(reason: unknown): void {
    if (this.controller.signal.aborted) {
      return;
    }
    this.release(this.items, this.head);
    this.release(this.inFlight);
    this.inFlight = [];
    this.dropHistory();
    this.items = [];
    this.head = 0;
    this.controller.abort(reason ?? new ChatError("unavailable", `the session of ${this.username} has ended`));
    this.stream?.abort(this.controller.signal.reason);
    this.wake();
  }

  private wake(): void {
    if (this.waiter !== undefined && !this.wakeScheduled) {
      this.wakeScheduled = true;
      this.schedule(this.wakeWaiter);
    }
  }
}
