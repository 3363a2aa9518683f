import { compareSentAt } from "../client/sdk/compare-sent-at.js";
import { type Channel, ChannelType, type ChatMessage, type Event, LeaveReason } from "../gen/chat/v1/chat_pb.js";

/** One line of a conversation: a message, or a note such as "bob joined". */
export type Line = { message: ChatMessage } | { note: string };

/** A user or group as the channel list shows it. */
export interface Listed {
  /** "@name" for a user, "#name" for a group. */
  key: string;
  name: string;
  type: "user" | "group";
}

/** The lines exchanged with one user or group, kept while the page is open. */
export interface Conversation extends Listed {
  lines: Line[];
  unread: number;
  /** The ids of its messages: each shows once, whether the stream or history brought it first. */
  ids: Set<string>;
  /**
   * Where its history stands: undefined until the latest page is read;
   * then the page token of the messages before the earliest read, empty
   * when there are none (or the server keeps no history).
   */
  olderToken: string | undefined;
  /** Whether a page of its history is being read. */
  loading: boolean;
}

/**
 * What the page knows of the chat, kept by the stream's events: no DOM
 * here (see render.ts), and no calls (see chat-connection.ts).
 */
export const state = {
  /** The signed-in user; empty before the first Connected. */
  me: "",
  /** Whether a stream is open: the composer is usable only then. */
  online: false,
  /** The key of the open conversation. */
  selected: undefined as string | undefined,
  /** Everyone online and every group, by key. */
  listed: new Map<string, Listed>(),
  conversations: new Map<string, Conversation>(),
  /** The groups the user is in, and their members: kept by membership events. */
  members: new Map<string, Set<string>>(),
};

/** The key of a user ("@name") or a group ("#name"). */
export function keyOf(channel: Pick<Channel, "name" | "type">): string {
  return `${channel.type === ChannelType.GROUP ? "#" : "@"}${channel.name}`;
}

/** Adds a user or group to the channel list. */
export function list(channel: Pick<Channel, "name" | "type">): void {
  const type = channel.type === ChannelType.GROUP ? "group" : "user";
  state.listed.set(keyOf(channel), { key: keyOf(channel), name: channel.name, type });
}

/** The conversation with a user or group, begun when there is none yet. */
export function conversation(key: string, name: string, type: "user" | "group"): Conversation {
  let found = state.conversations.get(key);
  if (found === undefined) {
    found = { key, name, type, lines: [], unread: 0, ids: new Set(), olderToken: undefined, loading: false };
    state.conversations.set(key, found);
  }
  return found;
}

/** Files a message under its conversation, counted as unread unless it is the open one. */
export function receive(message: ChatMessage): void {
  const channel = message.channel;
  if (channel === undefined) return;
  const isGroup = channel.type === ChannelType.GROUP;
  // A direct message belongs to the conversation with the other party.
  const name = isGroup ? channel.name : message.sender === state.me ? channel.name : message.sender;
  const key = keyOf({ name, type: channel.type });
  const conv = conversation(key, name, isGroup ? "group" : "user");
  if (conv.ids.has(message.id)) return;
  conv.ids.add(message.id);
  conv.lines.push({ message });
  if (key !== state.selected) conv.unread++;
}

/**
 * Adds messages read from a conversation's history (oldest first, as
 * readHistory gives them) to its lines, leaving out those it has. History
 * is in delivery order, as the stream is: a message read goes just before
 * the next one read that the conversation already had; those after the
 * last such go in by the server's time. Messages older than all it had go
 * first of all, before its notes, which came with the stream. Returns how
 * many were added.
 */
export function addHistory(conv: Conversation, messages: ChatMessage[]): number {
  const fresh = new Set<string>();
  /** The messages to put before each message the conversation had. */
  const before = new Map<string, ChatMessage[]>();
  let pending: ChatMessage[] = [];
  for (const message of messages) {
    if (conv.ids.has(message.id)) {
      if (pending.length > 0) before.set(message.id, pending);
      pending = [];
    } else if (!fresh.has(message.id)) {
      fresh.add(message.id);
      pending.push(message);
    }
  }
  const out: Line[] = [];
  let next = 0;
  let hadMessage = false;
  for (const line of conv.lines) {
    if ("message" in line) {
      const earlier = before.get(line.message.id) ?? [];
      while (next < pending.length && compareSentAt(pending[next]!, line.message) < 0) earlier.push(pending[next++]!);
      const lines = earlier.map((message) => ({ message }));
      if (hadMessage) out.push(...lines);
      else out.unshift(...lines);
      hadMessage = true;
    }
    out.push(line);
  }
  const rest = pending.slice(next).map((message) => ({ message }));
  if (hadMessage) out.push(...rest);
  else out.unshift(...rest);
  conv.lines = out;
  for (const id of fresh) conv.ids.add(id);
  return fresh.size;
}

/** A note in a group's conversation, when the user has it open or had it before. */
function note(group: string, text: string): void {
  state.conversations.get(`#${group}`)?.lines.push({ note: text });
}

const leaveWords: Record<LeaveReason, string> = {
  [LeaveReason.UNSPECIFIED]: "",
  [LeaveReason.LEFT]: "",
  [LeaveReason.DISCONNECTED]: " (disconnected)",
  [LeaveReason.CUT_OFF]: " (cut off: too far behind)",
  [LeaveReason.GROUP_DELETED]: " (the group was deleted)",
};

/**
 * Applies one event of the stream to the state. Returns the group the user
 * itself has just joined, if that is what the event says: the caller lists
 * its members once, and the membership events that follow keep the list.
 */
export function apply(event: Event): string | undefined {
  const { kind } = event;
  if (kind.case === "message") {
    receive(kind.value);
  } else if (kind.case === "memberJoined") {
    const { group, username } = kind.value;
    if (username === state.me) {
      state.members.set(group, new Set([state.me]));
      // It exists, whenever presence says so.
      list({ name: group, type: ChannelType.GROUP });
      conversation(`#${group}`, group, "group");
      return group;
    }
    state.members.get(group)?.add(username);
    note(group, `${username} joined`);
  } else if (kind.case === "memberLeft") {
    const { group, username, reason } = kind.value;
    if (username === state.me) state.members.delete(group);
    else state.members.get(group)?.delete(username);
    note(group, `${username === state.me ? "you" : username} left${leaveWords[reason]}`);
  } else if (kind.case === "channelsChanged") {
    for (const channel of kind.value.added) list(channel);
    for (const channel of kind.value.removed) state.listed.delete(keyOf(channel));
  }
  return undefined;
}
