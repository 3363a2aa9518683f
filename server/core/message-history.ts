import { ChatError } from "./chat-error.js";
import { holdEvent, type QueueBudget, releaseEvent } from "./queue-budget.js";
import { type ChatEvent, queuedEventBytes } from "./session-event.js";

/** How much history is kept: per channel, in all, and for how long. */
export interface HistoryBounds {
  /** Messages kept per channel (a group, or a pair of users); 0 keeps none: history is off. */
  messages: number;
  /** Bytes (see queuedEventBytes) kept per channel. */
  bytes: number;
  /** How long a message is kept, in ms. */
  ttlMs: number;
  /** Bytes kept across all channels; the oldest message of all goes first past it. */
  totalBytes: number;
}

/** The defaults of {@link HistoryBounds}: what protects a server of a few GB. */
export const defaultHistoryBounds: HistoryBounds = {
  messages: 1000,
  bytes: 1024 * 1024,
  ttlMs: 24 * 3600 * 1000,
  totalBytes: 64 * 1024 * 1024,
};

/** Which page of a channel's history to read, newest first. */
export interface HistoryPage {
  /** A cursor a previous page returned as next: only messages older than it. */
  before?: string;
  /** At most this many messages. */
  limit: number;
  /** At most this many bytes of text (UTF-8) in all, though never fewer than one message. No bound when undefined. */
  maxTextBytes?: number;
}

/**
 * How many of the messages, newest first, a page takes: at most its limit,
 * and no more text than its bytes, but at least one, so that paging always
 * moves on.
 */
export function pageLength(messages: readonly { textBytes: number }[], page: HistoryPage): number {
  const count = Math.min(messages.length, page.limit);
  if (page.maxTextBytes === undefined) return count;
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    bytes += messages[i]!.textBytes;
    if (bytes > page.maxTextBytes) return Math.max(i, 1);
  }
  return count;
}

/** A page of history, newest first, and the cursor of the page after it when older messages follow. */
export interface MessagePage {
  messages: ChatEvent[];
  next?: string;
}

interface Entry {
  /** Undefined once dropped, so that the global order does not keep it alive. */
  event: ChatEvent | undefined;
  readonly seq: number;
  readonly size: number;
  readonly at: number;
  /** The channel that still holds it; undefined once dropped. */
  channel: Channel | undefined;
}

interface Channel {
  readonly key: string;
  /** Oldest first; the first `head` were dropped. */
  entries: (Entry | undefined)[];
  head: number;
  bytes: number;
  /** For a pair, its two users, so that either one's end drops it. */
  readonly users: readonly string[];
}

/**
 * The history of the channels of one process: what was delivered in each
 * group and between each pair of users, in delivery order, within bounds
 * per channel, in all and in time. It holds the very events the queues
 * held, counted once in the process's budget (see queuedEventBytes), so a
 * message that is both queued and in history costs its bytes once.
 */
export interface MessageHistory {
  /** Whether history is kept at all (bounds.messages > 0). */
  readonly enabled: boolean;
  /** Keeps a message sent to a group. */
  appendGroup(group: string, event: ChatEvent): void;
  /** Keeps a direct message between two users. */
  appendDirect(a: string, b: string, event: ChatEvent): void;
  /** Reads a page of a group's history. Throws "invalid-input" for a cursor this history did not issue. */
  groupPage(group: string, page: HistoryPage): MessagePage;
  /** Reads a page of a pair's history. */
  directPage(a: string, b: string, page: HistoryPage): MessagePage;
  /** Whether a pair has any history. */
  hasDirect(a: string, b: string): boolean;
  /** Forgets a group's history: the group was deleted. */
  dropGroup(group: string): void;
  /** Forgets every pair history of a user: its session ended, and the name may pass to someone else. */
  dropUser(username: string): void;
  /** Drops the oldest messages of all until `bytes` are freed or none is left; answers the bytes freed. */
  shed(bytes: number): number;
  /** The bytes kept, in all. */
  readonly bytes: number;
  /** The messages kept, in all. */
  readonly size: number;
  /** Stops the expiry timer. */
  close(): void;
}

/** Settings of {@link createMessageHistory}. */
export interface MessageHistoryOptions extends HistoryBounds {
  /** The process's budget, shared with the queues. */
  budget: QueueBudget;
  /** The clock; Date.now by default. */
  now?: () => number;
}

/** The history of a channel is the history of its key: groups and pairs never share one. */
const groupKey = (group: string) => `g|${group}`;
const pairKey = (a: string, b: string) => (a < b ? `p|${a}|${b}` : `p|${b}|${a}`);

/** Creates the history of one process; with bounds.messages 0, one that keeps nothing. */
export function createMessageHistory(options: MessageHistoryOptions): MessageHistory {
  return new MessageHistoryImpl(options);
}

/** The error of a cursor this history did not issue. */
export function badCursor(): ChatError {
  return new ChatError(
    "invalid-input",
    "page_token is not one this server issued for this channel: pass next_page_token as it came, or none for the first page",
  );
}

class MessageHistoryImpl implements MessageHistory {
  readonly enabled: boolean;
  private readonly channels = new Map<string, Channel>();
  private readonly pairsOf = new Map<string, Set<string>>();
  // Every entry kept, oldest first, for the total bound and expiry: the first `head` are gone.
  private order: Entry[] = [];
  private head = 0;
  private total = 0;
  private count = 0;
  // One numbering for every channel, never reused: a cursor of a group deleted and created again, or of
  // a pair whose messages all went, is older than everything the new one keeps.
  private nextSeq = 1;
  private readonly bounds: HistoryBounds;
  private readonly budget: QueueBudget;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(options: MessageHistoryOptions) {
    this.bounds = options;
    this.budget = options.budget;
    this.now = options.now ?? Date.now;
    this.enabled = options.messages > 0;
    // An idle server lets expired messages go too, not only at the next send.
    this.timer = this.enabled ? setInterval(() => this.expire(), Math.min(options.ttlMs, 60_000)).unref() : undefined;
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.count;
  }

  appendGroup(group: string, event: ChatEvent): void {
    if (this.enabled) this.append(groupKey(group), [], event);
  }

  appendDirect(a: string, b: string, event: ChatEvent): void {
    if (this.enabled) this.append(pairKey(a, b), a === b ? [a] : [a, b], event);
  }

  groupPage(group: string, page: HistoryPage): MessagePage {
    return this.page(groupKey(group), page);
  }

  directPage(a: string, b: string, page: HistoryPage): MessagePage {
    return this.page(pairKey(a, b), page);
  }

  hasDirect(a: string, b: string): boolean {
    this.expire();
    const channel = this.channels.get(pairKey(a, b));
    return channel !== undefined && channel.entries.length > channel.head;
  }

  dropGroup(group: string): void {
    this.dropChannel(groupKey(group));
  }

  dropUser(username: string): void {
    for (const key of [...(this.pairsOf.get(username) ?? [])]) this.dropChannel(key);
  }

  shed(bytes: number): number {
    let freed = 0;
    while (freed < bytes && this.head < this.order.length) {
      const entry = this.order[this.head]!;
      if (entry.channel !== undefined) freed += this.dropOldest(entry.channel);
      else this.advance();
    }
    return freed;
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private append(key: string, users: readonly string[], event: ChatEvent): void {
    const { bounds } = this;
    this.expire();
    let channel = this.channels.get(key);
    if (channel === undefined) {
      channel = { key, entries: [], head: 0, bytes: 0, users };
      this.channels.set(key, channel);
      for (const user of users) {
        let pairs = this.pairsOf.get(user);
        if (pairs === undefined) {
          pairs = new Set();
          this.pairsOf.set(user, pairs);
        }
        pairs.add(key);
      }
    }
    const size = queuedEventBytes(event);
    const entry: Entry = { event, seq: this.nextSeq++, size, at: this.now(), channel };
    channel.entries.push(entry);
    channel.bytes += size;
    this.order.push(entry);
    this.total += size;
    this.count++;
    // Held like a queue holds it: counted once in the budget, whoever else holds it.
    holdEvent(this.budget, event, size);
    while (channel.entries.length - channel.head > bounds.messages || channel.bytes > bounds.bytes) this.dropOldest(channel);
    while (this.total > bounds.totalBytes) this.shed(this.total - bounds.totalBytes);
  }

  private page(key: string, page: HistoryPage): MessagePage {
    this.expire();
    let before = Number.POSITIVE_INFINITY;
    if (page.before !== undefined) {
      if (!/^[1-9][0-9]{0,14}$/.test(page.before)) throw badCursor();
      before = Number(page.before);
    }
    const channel = this.channels.get(key);
    if (channel === undefined) return { messages: [] };
    const { entries } = channel;
    // The first entry at or after the cursor, by binary search: those before it are older.
    let low = channel.head;
    let high = entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (entries[mid]!.seq < before) low = mid + 1;
      else high = mid;
    }
    const candidates: ChatEvent[] = [];
    for (let i = low - 1; i >= Math.max(channel.head, low - page.limit); i--) {
      const event = entries[i]?.event;
      if (event !== undefined) candidates.push(event);
    }
    const messages = candidates.slice(0, pageLength(candidates, page));
    // The oldest message shown is where the next page starts, if anything older is kept.
    const from = low - messages.length;
    return from > channel.head ? { messages, next: String(entries[from]!.seq) } : { messages };
  }

  /** Drops a channel's oldest message; answers its size. */
  private dropOldest(channel: Channel): number {
    const entry = channel.entries[channel.head]!;
    channel.entries[channel.head] = undefined;
    channel.head++;
    if (channel.head > 64 && channel.head * 2 > channel.entries.length) {
      channel.entries = channel.entries.slice(channel.head);
      channel.head = 0;
    }
    channel.bytes -= entry.size;
    this.release(entry);
    if (channel.head === channel.entries.length) this.forget(channel);
    return entry.size;
  }

  private dropChannel(key: string): void {
    const channel = this.channels.get(key);
    if (channel === undefined) return;
    for (let i = channel.head; i < channel.entries.length; i++) this.release(channel.entries[i]!);
    channel.entries = [];
    channel.head = 0;
    channel.bytes = 0;
    this.forget(channel);
  }

  private forget(channel: Channel): void {
    this.channels.delete(channel.key);
    for (const user of channel.users) {
      const pairs = this.pairsOf.get(user);
      pairs?.delete(channel.key);
      if (pairs?.size === 0) this.pairsOf.delete(user);
    }
  }

  private release(entry: Entry): void {
    entry.channel = undefined;
    this.total -= entry.size;
    this.count--;
    const { event } = entry;
    entry.event = undefined;
    if (event !== undefined) releaseEvent(this.budget, event, entry.size);
    if (this.order[this.head] === entry) this.advance();
    // Whole channels dropped leave dead entries behind the head: they may not outnumber the live ones for long.
    if (this.order.length - this.head > 2 * this.count + 1024) {
      this.order = this.order.filter((e) => e.channel !== undefined);
      this.head = 0;
    }
  }

  /** Moves past dropped entries at the head of the global order, compacting it now and then. */
  private advance(): void {
    const { order } = this;
    while (this.head < order.length && order[this.head]!.channel === undefined) this.head++;
    if (this.head > 1024 && this.head * 2 > order.length) {
      this.order = order.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops what outlived the retention: the global order is by time, so only its head is looked at. */
  private expire(): void {
    const oldest = this.now() - this.bounds.ttlMs;
    while (this.head < this.order.length) {
      const entry = this.order[this.head]!;
      if (entry.channel === undefined) this.advance();
      else if (entry.at < oldest) this.dropOldest(entry.channel);
      else break;
    }
  }
}
