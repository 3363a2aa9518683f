import type { ChatMessage } from "../../gen/chat/v1/chat_pb.js";

/**
 * Orders two messages by the server's time of them, oldest first (a
 * message without one sorts first): the order to merge messages of
 * several conversations, or history with what the stream brought, in.
 */
export function compareSentAt(a: ChatMessage, b: ChatMessage): number {
  const [as, an] = [a.sentAt?.seconds ?? 0n, a.sentAt?.nanos ?? 0];
  const [bs, bn] = [b.sentAt?.seconds ?? 0n, b.sentAt?.nanos ?? 0];
  return as === bs ? an - bn : as < bs ? -1 : 1;
}
