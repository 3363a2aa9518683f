import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ChannelType, type ChatMessage } from "../gen/chat/v1/chat_pb.js";

/**
 * Formats a message as one line: the server's time of it (UTC), channel
 * ("#group", or "@user" for a direct message to that user), sender, text.
 * With date, the time is preceded by the day, as history, which may go
 * back days, shows it.
 */
export function formatMessage(message: ChatMessage, { date = false } = {}): string {
  const iso = message.sentAt ? timestampDate(message.sentAt).toISOString() : undefined;
  const time = iso === undefined ? (date ? "----------- --:--:--" : "--:--:--") : date ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : iso.slice(11, 19);
  const channel = message.channel;
  const where = channel?.type === ChannelType.GROUP ? `#${channel.name}` : `@${channel?.name ?? "?"}`;
  return `${time} ${where} <${message.sender}> ${message.text}`;
}
