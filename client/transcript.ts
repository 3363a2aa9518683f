import { ChannelType, type ChatMessage } from "../gen/chat/v1/chat_pb.js";
import { formatMessage } from "./format-message.js";

/**
 * What the terminal client has shown, for history to add only what it has
 * not: the ids of the messages shown or sent, and the conversations the
 * user is in (its groups, and the users it exchanged direct messages with).
 */
export interface Transcript {
  /** Prints a message from the stream, unless it was shown already (fetched from history first). */
  live(message: ChatMessage): void;
  /** Prints messages read from history as a block under a heading, oldest first, each with its day and time. */
  history(heading: string, messages: ChatMessage[]): void;
  /** Prints messages the stream missed, found in history, as it would have printed them; those shown already are left out. */
  missed(messages: ChatMessage[]): void;
  /**
   * Remembers a message the user sent to another user, which the server
   * does not echo to its sender, and the conversation of any message sent.
   */
  sent(channel: string, message: ChatMessage | undefined): void;
  /** Whether a message was shown or sent. */
  has(id: string): boolean;
  /** Notes that the user joined or left a group. */
  inGroup(group: string, member: boolean): void;
  /** The channels of the user's conversations, as ListMessages names them. */
  conversations(): string[];
}

/** The most message ids kept: enough to tell a resume's gap from what was shown. */
const maxIds = 10_000;

/** Creates the transcript of the user me, printing through print. */
export function createTranscript(me: string, print: (line: string) => void): Transcript {
  const ids = new Set<string>();
  const groups = new Set<string>();
  const peers = new Set<string>();
  const remember = (message: ChatMessage) => {
    if (message.id === "") return;
    ids.add(message.id);
    // Sets keep insertion order: the first is the oldest.
    if (ids.size > maxIds) ids.delete(ids.values().next().value ?? "");
    const channel = message.channel;
    if (channel?.type === ChannelType.USER) peers.add(message.sender === me ? channel.name : message.sender);
  };
  const live = (message: ChatMessage) => {
    if (message.id !== "" && ids.has(message.id)) return;
    remember(message);
    print(formatMessage(message));
  };
  return {
    live,
    history(heading, messages) {
      print(heading);
      for (const message of messages) {
        remember(message);
        print(`  ${formatMessage(message, { date: true })}`);
      }
    },
    missed(messages) {
      const fresh = messages.filter((m) => !ids.has(m.id));
      if (fresh.length === 0) return;
      print(`* ${fresh.length} missed ${fresh.length === 1 ? "message" : "messages"}, from history:`);
      for (const message of fresh) live(message);
    },
    sent(channel, message) {
      if (message?.channel?.type === ChannelType.GROUP) groups.add(channel);
      // The stream echoes what goes to a group, or to the user itself: that prints when it comes.
      else if (message !== undefined && channel !== me) remember(message);
    },
    has: (id) => ids.has(id),
    inGroup(group, member) {
      if (member) groups.add(group);
      else groups.delete(group);
    },
    conversations: () => [...groups, ...peers],
  };
}
