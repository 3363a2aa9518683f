import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ChatMessageSchema,
  type ConnectResponse,
  ConnectResponseSchema,
  type EventSchema,
  EventSchema as Events,
  LeaveReason,
  type SendMessageResponse,
  SendMessageResponseSchema,
} from "../../gen/chat/v1/chat_pb.js";
import type { ChatEvent, LeaveReason as CoreLeaveReason, SessionEvent } from "../core/session-event.js";
import { preEncoded } from "../transport/lean/pre-encoded.js";
import { channelTypes } from "./channel-types.js";
import { encodeMessageEvent } from "./encode-message-event.js";

// Each group message is encoded once, however many members receive it: the
// encoded Event, as an occurrence of ConnectResponse's field 1 (tag, length,
// bytes), is kept for as long as the event is alive, with the unknown field
// protobuf-es writes it from (the same bytes without the tag), and responses
// carry both as they are.
interface EncodedEvent {
  readonly field: Uint8Array;
  readonly unknown: { no: number; wireType: WireType; data: Uint8Array };
}
const encodedEvents = new WeakMap<SessionEvent, EncodedEvent>();

function encodedEvent(event: SessionEvent): EncodedEvent {
  let encoded = encodedEvents.get(event);
  if (encoded === undefined) {
    const bytes = (event.kind === "message" ? encodeMessageEvent(event) : undefined) ?? toBinary(Events, create(Events, toEvent(event)));
    // The field's tag (one byte), the Event's length as a varint, the Event.
    let lengthBytes = 1;
    for (let left = bytes.length; left > 0x7f; left = Math.floor(left / 0x80)) lengthBytes++;
    const field = Buffer.allocUnsafe(1 + lengthBytes + bytes.length);
    field[0] = (eventsField << 3) | WireType.LengthDelimited;
    let at = 1;
    for (let left = bytes.length; ; left = Math.floor(left / 0x80)) {
      if (left <= 0x7f) {
        field[at++] = left;
        break;
      }
      field[at++] = (left % 0x80) | 0x80;
    }
    field.set(bytes, at);
    encoded = { field, unknown: { no: eventsField, wireType: WireType.LengthDelimited, data: field.subarray(1) } };
    encodedEvents.set(event, encoded);
  }
  return encoded;
}

/** ConnectResponse.events: its tag is one byte, so an encoded occurrence without it starts at 1. */
const eventsField = 1;

/**
 * Builds one ConnectResponse carrying a batch of events in order. For the
 * binary format, the events travel as pre-encoded occurrences of field 1
 * (events) in the message's unknown fields, which protobuf-es writes out
 * verbatim: on the wire this is exactly a ConnectResponse with its events
 * set, without building and encoding the same messages again for every
 * member of a group. The same occurrences, tags included, mark the response
 * as pre-encoded, so that the lean path writes them without serializing the
 * response at all. The JSON format ignores unknown fields, so for it the
 * events are built as messages.
 */
export function toConnectResponse(batch: readonly SessionEvent[], binary: boolean): ConnectResponse {
  if (!binary) {
    return create(ConnectResponseSchema, { events: batch.map(toEvent) });
  }
  const response = create(ConnectResponseSchema);
  const encoded = batch.map(encodedEvent);
  response.$unknown = encoded.map((e) => e.unknown);
  return preEncoded(
    response,
    encoded.map((e) => e.field),
  );
}

/**
 * Builds SendMessage's response for the message as delivered, marked with
 * its encoding, which is that of the delivered event: an Event holds the
 * message in its field 2 and SendMessageResponse in its field 1, with the
 * same length and bytes after the tag. The lean path writes it without
 * serializing the message again, and the event's encoding, made here or by
 * the first stream that delivers it, serves both.
 */
export function toSendMessageResponse(event: ChatEvent): SendMessageResponse {
  const response = create(SendMessageResponseSchema, { message: toChatMessage(event) });
  // The Event's length (a varint), then the Event: the message's tag (one
  // byte), its length and its bytes, which the response takes after a tag
  // of its own.
  const { data } = encodedEvent(event).unknown;
  let eventAt = 0;
  while ((data[eventAt]! & 0x80) !== 0) eventAt++;
  eventAt++;
  return preEncoded(response, [sendMessageTag, data.subarray(eventAt + 1)]);
}

/** SendMessageResponse.message: field 1, length-delimited. */
const sendMessageTag = Uint8Array.of((1 << 3) | WireType.LengthDelimited);

const leaveReasons: Record<CoreLeaveReason, LeaveReason> = {
  left: LeaveReason.LEFT,
  disconnected: LeaveReason.DISCONNECTED,
  "cut-off": LeaveReason.CUT_OFF,
  "group-deleted": LeaveReason.GROUP_DELETED,
};

/** The Event of the contract for an event of the core. */
function toEvent(event: SessionEvent): MessageInitShape<typeof EventSchema> {
  switch (event.kind) {
    case "message":
      return { kind: { case: "message", value: toChatMessage(event) } };
    case "member-joined":
      return { kind: { case: "memberJoined", value: { group: event.group, username: event.username } } };
    case "member-left": {
      const reason = leaveReasons[event.reason ?? "left"];
      return { kind: { case: "memberLeft", value: { group: event.group, username: event.username, reason, detail: event.detail ?? "" } } };
    }
    case "channels-changed": {
      const channel = (c: { name: string; type: "user" | "group" }) => ({ name: c.name, type: channelTypes[c.type] });
      return { kind: { case: "channelsChanged", value: { added: event.added.map(channel), removed: event.removed.map(channel) } } };
    }
  }
}

/** The ChatMessage of the contract for a message of the core: as streamed, as SendMessage and ListMessages answer it. */
export function toChatMessage(event: ChatEvent): MessageInitShape<typeof ChatMessageSchema> {
  return {
    id: event.id,
    sender: event.sender,
    channel: { name: event.channel.name, type: channelTypes[event.channel.type] },
    text: event.text,
    sentAt: timestampFromDate(event.sentAt),
  };
}
