import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { EventSchema } from "../../gen/chat/v1/chat_pb.js";
import type { ChatEvent } from "../../server/core/session-event.js";
import { toChatMessage } from "../../server/rpc/connect-response.js";
import { encodeMessageEvent } from "../../server/rpc/encode-message-event.js";

function event(overrides: Partial<ChatEvent>): ChatEvent {
  return {
    kind: "message",
    id: "0d1e4c2a-5f6b-4a8e-9c3d-2b7f1e6a9d40",
    sender: "alice",
    channel: { name: "team", type: "group" },
    text: "hello",
    sentAt: new Date(1_700_000_000_123),
    textBytes: 5,
    ...overrides,
  };
}

const reference = (e: ChatEvent) => Buffer.from(toBinary(EventSchema, create(EventSchema, { kind: { case: "message", value: toChatMessage(e) } })));

describe("a message event's own encoder", () => {
  it("writes exactly what protobuf-es writes", () => {
    const cases: [string, ChatEvent][] = [
      ["a group message", event({})],
      ["a direct message", event({ channel: { name: "bob", type: "user" } })],
      ["an empty text", event({ text: "" })],
      ["multi-byte text", event({ text: "é😀中".repeat(50) })],
      ["text of 127, 128 and 20,000 bytes", event({ text: "x".repeat(127) })],
      ["", event({ text: "x".repeat(128) })],
      [" ", event({ text: "y".repeat(20_000) })],
      ["a whole second", event({ sentAt: new Date(1_700_000_000_000) })],
      ["the epoch", event({ sentAt: new Date(0) })],
      ["a millisecond after it", event({ sentAt: new Date(1) })],
      ["far ahead", event({ sentAt: new Date(8_640_000_000_000_000) })],
      ["empty names", event({ id: "", sender: "", channel: { name: "", type: "user" } })],
    ];
    for (const [name, e] of cases) {
      const own = encodeMessageEvent(e);
      assert.ok(own !== undefined, name);
      assert.deepEqual(Buffer.from(own), reference(e), name);
    }
  });

  it("leaves a time before 1970 to the generic encoder", () => {
    assert.equal(encodeMessageEvent(event({ sentAt: new Date(-1) })), undefined);
  });
});
