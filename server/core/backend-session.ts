import { randomBytes, timingSafeEqual } from "node:crypto";
import { ChatError, chatErrors } from "./chat-error.js";
import type { ChatSession } from "./chat-session.js";
import { type EventOptIns, noOptIns } from "./event-opt-ins.js";
import { createQueueBudget, holdEvent, type QueueBudget, releaseEvent } from "./queue-budget.js";
import type { HistoryLimits } from "./resume-session.js";
import { queuedEventBytes, type SessionEvent } from "./session-event.js";
import type { WakeScheduler } from "./wake-scheduler.js";

/**
 * A session as its backend holds it: the {@link ChatSession} that streams
 * see, plus what only a backend touches (its groups, pushing events into it,
 * ending it, resuming it).
 */
export interface BackendSession extends ChatSession {
  /** The groups the user is a member of, by name. */
  readonly groups: ReadonlySet<string>;
  /** Records that the user is now a member of the group (see LocalSessions.addMember). */
  addGroup(group: string): void;
  /** Records that the user is no longer a member of the group. */
  removeGroup(group: string): void;
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

/** The bounds of one session's queue. */
export interface QueueLimits {
  /** Events that may wait before the session is cut off. */
  events: number;
  /** Bytes (see {@link queuedEventBytes}) that may wait before the session is cut off. */
  bytes: number;
}

/** The groups of a session that never joined one: most sessions, which then hold no Set of their own. */
const noGroups: ReadonlySet<string> = new Set();

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
 * Creates one session whose queue holds at most limits.events events and
 * limits.bytes bytes, counted in the budget too, whose reader is woken
 * through the scheduler.
 */
export function createBackendSession(
  username: string,
  limits: QueueLimits,
  schedule: WakeScheduler = wakeNow,
  budget: QueueBudget = createQueueBudget(Number.POSITIVE_INFINITY),
  extras: SessionExtras = {},
): BackendSession {
  return new BackendSessionImpl(username, limits, schedule, budget, extras);
}

/**
 * The one BackendSession: its queue, the batch in flight, and for a
 * resumable session the history a resume replays.
 */
// What an idle session holds is what every connected user costs (see
// bench/stream-memory.ts): what most sessions never use (a set of groups,
// the closure that wakes a reader) is made when first needed.
class BackendSessionImpl implements BackendSession {
  private groupSet: Set<string> | undefined;
  optIns: EventOptIns;
  readonly resumeToken: string | undefined;
  private readonly controller = new AbortController();
  // A FIFO as an array with a moving head: shift() would be O(n) per event.
  private items: SessionEvent[] = [];
  private head = 0;
  private bytes = 0;
  // The batch taken last, held until written() says its response is out.
  private inFlight: SessionEvent[] = [];
  // The resolve function of the promise wait() returned, itself: no closure around it.
  private waiter: (() => void) | undefined;
  private wakeScheduled = false;
  private wakeWaiter: (() => void) | undefined;
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

  get groups(): ReadonlySet<string> {
    return this.groupSet ?? noGroups;
  }

  addGroup(group: string): void {
    this.groupSet ??= new Set();
    this.groupSet.add(group);
  }

  removeGroup(group: string): void {
    this.groupSet?.delete(group);
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
    holdEvent(this.budget, event, size);
  }

  private release(events: readonly SessionEvent[], from = 0, to = events.length): void {
    for (let i = from; i < to; i++) {
      this.bytes -= this.unhold(events[i]!);
    }
  }

  /** Stops counting an event against the total once no queue holds it; returns its size. */
  private unhold(event: SessionEvent): number {
    const size = queuedEventBytes(event);
    releaseEvent(this.budget, event, size);
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
      this.waiter = resolve;
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
      this.wakeWaiter ??= () => {
        this.wakeScheduled = false;
        const waiter = this.waiter;
        this.waiter = undefined;
        waiter?.();
      };
      this.schedule(this.wakeWaiter);
    }
  }
}
