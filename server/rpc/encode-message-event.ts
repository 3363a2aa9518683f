import type { ChatEvent } from "../core/session-event.js";
import { channelTypes } from "./channel-types.js";

// Field numbers of the contract (proto/chat/v1/chat.proto) that a message
// event is made of, and the two wire types they use.
const eventMessage = 2;
const [messageId, messageSender, messageChannel, messageText, messageSentAt] = [1, 2, 3, 4, 5];
const [channelName, channelType] = [1, 2];
const [timestampSeconds, timestampNanos] = [1, 2];
const varint = 0;
const lengthDelimited = 2;

/**
 * Encodes the Event of a chat message (Event.message, a ChatMessage) to
 * exactly the bytes protobuf-es's toBinary makes of it, fields in number
 * order and defaults left out, without its reflection: every message is
 * encoded once here, for all its recipients and its sender's response, and
 * the generic encoder cost more than the rest of a send. Returns undefined
 * for a time before 1970, whose negative seconds take the generic encoder.
 * test/server/encode-message-event.test.ts compares the two.
 */
export function encodeMessageEvent(event: ChatEvent): Uint8Array | undefined {
  const ms = event.sentAt.getTime();
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0 || !Number.isSafeInteger(seconds)) return undefined;
  const nanos = (ms - seconds * 1000) * 1_000_000;
  const type = channelTypes[event.channel.type];
  const idBytes = Buffer.byteLength(event.id);
  const senderBytes = Buffer.byteLength(event.sender);
  const nameBytes = Buffer.byteLength(event.channel.name);
  const textBytes = Buffer.byteLength(event.text);
  const channelSize = stringField(nameBytes) + (type === 0 ? 0 : 1 + varintSize(type));
  const timestampSize = (seconds === 0 ? 0 : 1 + varintSize(seconds)) + (nanos === 0 ? 0 : 1 + varintSize(nanos));
  const messageSize =
    stringField(idBytes) +
    stringField(senderBytes) +
    1 +
    varintSize(channelSize) +
    channelSize +
    stringField(textBytes) +
    1 +
    varintSize(timestampSize) +
    timestampSize;
  const out = Buffer.allocUnsafe(1 + varintSize(messageSize) + messageSize);
  let at = 0;
  const tag = (field: number, wireType: number) => {
    out[at++] = (field << 3) | wireType;
  };
  const uint = (value: number) => {
    let left = value;
    while (left > 0x7f) {
      out[at++] = (left % 0x80) | 0x80;
      left = Math.floor(left / 0x80);
    }
    out[at++] = left;
  };
  const string = (field: number, value: string, bytes: number) => {
    if (bytes === 0) return;
    tag(field, lengthDelimited);
    uint(bytes);
    at += out.write(value, at, "utf8");
  };
  tag(eventMessage, lengthDelimited);
  uint(messageSize);
  string(messageId, event.id, idBytes);
  string(messageSender, event.sender, senderBytes);
  tag(messageChannel, lengthDelimited);
  uint(channelSize);
  string(channelName, event.channel.name, nameBytes);
  if (type !== 0) {
    tag(channelType, varint);
    uint(type);
  }
  string(messageText, event.text, textBytes);
  tag(messageSentAt, lengthDelimited);
  uint(timestampSize);
  if (seconds !== 0) {
    tag(timestampSeconds, varint);
    uint(seconds);
  }
  if (nanos !== 0) {
    tag(timestampNanos, varint);
    uint(nanos);
  }
  return out;
}

/** The bytes of a string field of this many bytes: none when empty, which proto3 leaves out. */
function stringField(bytes: number): number {
  return bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes;
}

/** The bytes of a non-negative integer as a varint. */
function varintSize(value: number): number {
  let size = 1;
  for (let left = value; left > 0x7f; left = Math.floor(left / 0x80)) size++;
  return size;
}
