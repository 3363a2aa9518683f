import { ChatError, chatErrors } from "./chat-error.js";

/** Where a message was sent: a group, or for a direct message its recipient. */
export interface ChannelRef {
  readonly name: string;
  readonly type: "user" | "group";
}

/**
 * One message as the core sees it. A group message is a single object shared
 * by the queues of all its recipients, never copied per member.
 */
export interface ChatEvent {
  readonly id: string;
  readonly sender: string;
  readonly channel: ChannelRef;
  readonly text: string;
  /** The text's size in bytes of UTF-8, measured once when it was sent. */
  readonly textBytes: number;
  readonly sentAt: Date;
  /**
   * How many queues (or responses not yet written) hold this event: the
   * core's bookkeeping, so that a group message shared by every member's
   * queue counts once in the server's total.
   */
  holders?: number;
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
  take(maxEvents: number, maxTextBytes: number): ChatEvent[];
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
  push(event: ChatEvent): ChatError | undefined;
  /** Ends the session once; later calls do nothing. Drops what is queued. */
  end(reason: unknown): void;
}

/**
 * What one event costs in memory, measured rather than guessed: V8 keeps a
 * string of any character past Latin-1 at two bytes a character (so at most
 * twice its UTF-8 size), and the event object with its id, names, channel and
 * timestamp takes about 700 bytes (a heap snapshot of 655,200 one-byte
 * direct messages gave 740 each).
 */
export function queuedEventBytes(event: ChatEvent): number {
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
 * memory every other user needs. Scans the sessions (a fresh iteration each
 * time: cutting one off changes them) only when over.
 */
export function enforceQueueBudget(budget: QueueBudget, sessions: () => Iterable<SessionState>, cutOff: (session: SessionState) => void): void {
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
): SessionState {
  return new Session(username, limits, schedule, budget);
}

class Session implements SessionState {
  readonly groups = new Set<string>();
  private readonly controller = new AbortController();
  // A FIFO as an array with a moving head: shift() would be O(n) per event.
  private items: ChatEvent[] = [];
  private head = 0;
  private bytes = 0;
  // The batch taken last, held until written() says its response is out.
  private inFlight: ChatEvent[] = [];
  private waiter: (() => void) | undefined;
  private wakeScheduled = false;
  private readonly wakeWaiter = () => {
    this.wakeScheduled = false;
    this.waiter?.();
  };

  constructor(
    readonly username: string,
    private readonly limits: QueueLimits,
    private readonly schedule: WakeScheduler,
    private readonly budget: QueueBudget,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get pending(): number {
    return this.items.length - this.head;
  }

  get pendingBytes(): number {
    return this.bytes;
  }

  push(event: ChatEvent): ChatError | undefined {
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
  private hold(event: ChatEvent, size: number): void {
    this.bytes += size;
    event.holders = (event.holders ?? 0) + 1;
    if (event.holders === 1) this.budget.usedBytes += size;
  }

  private release(events: readonly ChatEvent[], from = 0, to = events.length): void {
    for (let i = from; i < to; i++) {
      const event = events[i]!;
      const size = queuedEventBytes(event);
      this.bytes -= size;
      event.holders = (event.holders ?? 1) - 1;
      if (event.holders === 0) this.budget.usedBytes -= size;
    }
  }

  written(): void {
    if (this.inFlight.length > 0) {
      this.release(this.inFlight);
      this.inFlight = [];
    }
  }

  take(maxEvents: number, maxTextBytes: number): ChatEvent[] {
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
      const event = this.items[this.head + count] as ChatEvent;
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
      return all;
    }
    const taken = this.items.slice(this.head, this.head + count);
    this.inFlight = taken;
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
    this.written();
    this.items = [];
    this.head = 0;
    this.controller.abort(reason ?? new ChatError("unavailable", `the session of ${this.username} has ended`));
    this.wake();
  }

  private wake(): void {
    if (this.waiter !== undefined && !this.wakeScheduled) {
      this.wakeScheduled = true;
      this.schedule(this.wakeWaiter);
    }
  }
}
