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
