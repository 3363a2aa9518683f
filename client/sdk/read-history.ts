import type { ChatMessage } from "../../gen/chat/v1/chat_pb.js";
import type { ChatClient } from "./resumable-session.js";

/** Some of a conversation's history, oldest first, and where to go on. */
export interface HistoryPage {
  /** Oldest first: the order to show them in. */
  messages: ChatMessage[];
  /** The page token of the messages before these; empty when there are none. */
  olderToken: string;
}

/**
 * Reads one page of a conversation's history: the latest, or from
 * olderToken on the one before a page already read, of at most pageSize
 * messages (the server may make it fewer), turned round to oldest first.
 */
export async function readHistoryPage(client: Pick<ChatClient, "listMessages">, channel: string, pageSize: number, olderToken = ""): Promise<HistoryPage> {
  const page = await client.listMessages({ channel, pageSize, pageToken: olderToken });
  return { messages: page.messages.reverse(), olderToken: page.nextPageToken };
}

/**
 * Reads the latest messages of a conversation (a group the caller is in, or
 * the user at the other end of direct messages), up to count of them,
 * following ListMessages' pages back as far as it takes; from olderToken
 * on, the ones before a page already read. ListMessages gives the newest
 * first: the messages come back turned round, oldest first.
 */
export async function readHistory(client: Pick<ChatClient, "listMessages">, channel: string, count: number, olderToken = ""): Promise<HistoryPage> {
  const newestFirst: ChatMessage[] = [];
  let pageToken = olderToken;
  do {
    const page = await client.listMessages({ channel, pageSize: count - newestFirst.length, pageToken });
    newestFirst.push(...page.messages);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && newestFirst.length < count);
  return { messages: newestFirst.reverse(), olderToken: pageToken };
}

/**
 * Reads the messages of a conversation that a client missed: back from the
 * latest to the newest one it had (known says which), at most limit of
 * them, and resolves with them oldest first. What a client does after a
 * resume whose Connected counts lost events: the server replays what it
 * still holds, and history has the rest. Messages come in one order, so
 * those before one the client had were had too, or came before it was
 * there: neither is missed. known must answer as of before the resume, or
 * a replayed message would stop the reading short of the lost ones; self is
 * the caller, whose own messages do not stop it.
 */
export async function readMissed(
  client: Pick<ChatClient, "listMessages">,
  channel: string,
  known: (id: string) => boolean,
  self: string,
  limit = 500,
): Promise<ChatMessage[]> {
  const missed: ChatMessage[] = [];
  let pageToken = "";
  do {
    // A call that hangs must not hold the client up for good: the caller waits for this one.
    const page = await client.listMessages({ channel, pageSize: Math.min(100, limit - missed.length), pageToken }, { timeoutMs: 10_000 });
    for (const message of page.messages) {
      if (known(message.id)) {
        // The client knows its own direct messages from their sends, not from the stream (it does not
        // echo them): one sent while the stream was down is newer than those lost, so it is no place to stop.
        if (message.sender !== self) return missed.reverse();
        continue;
      }
      missed.push(message);
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && missed.length < limit);
  return missed.reverse();
}
