import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectResponseSchema, SendMessageResponseSchema } from "../../gen/chat/v1/chat_pb.js";
import type { ChatEvent, SessionEvent } from "../../server/core/session-event.js";
import { toConnectResponse, toSendMessageResponse } from "../../server/rpc/connect-response.js";
import { preEncodedFields } from "../../server/transport/lean/pre-encoded.js";

const batch: SessionEvent[] = [
  { kind: "message", id: "m1", sender: "alice", channel: { name: "team", type: "group" }, text: "hello", sentAt: new Date(1_700_000_000_123), textBytes: 5 },
  { kind: "member-joined", group: "team", username: "bob", textBytes: 7 },
  {
    kind: "message",
    id: "m2",
    sender: "bob",
    channel: { name: "alice", type: "user" },
    text: "é".repeat(200),
    sentAt: new Date(1_700_000_001_000),
    textBytes: 400,
  },
];

describe("a pre-encoded ConnectResponse", () => {
  it("carries exactly the bytes protobuf-es serializes it to, which decode to the events built as messages", () => {
    const response = toConnectResponse(batch, true);
    const fields = preEncodedFields(response);
    assert.ok(fields !== undefined, "the binary response is marked pre-encoded");
    const written = Buffer.concat(fields);
    assert.deepEqual(written, Buffer.from(toBinary(ConnectResponseSchema, response)));
    const decoded = fromBinary(ConnectResponseSchema, written);
    assert.ok(equals(ConnectResponseSchema, decoded, toConnectResponse(batch, false)), "the same events as the JSON form builds");
  });

  it("is not marked for JSON, nor when it is any other message", () => {
    assert.equal(preEncodedFields(toConnectResponse(batch, false)), undefined);
    assert.equal(preEncodedFields({}), undefined);
    // A copy made to change a field must not carry the original's bytes.
    assert.equal(preEncodedFields({ ...toConnectResponse(batch, true) }), undefined);
    assert.equal(preEncodedFields(undefined), undefined);
  });
});

describe("a pre-encoded SendMessageResponse", () => {
  it("carries exactly the bytes protobuf-es serializes it to, before and after its event was encoded for a stream", () => {
    for (const message of [batch[0], batch[2]] as ChatEvent[]) {
      for (const first of ["response", "stream"]) {
        const event = { ...message };
        if (first === "stream") toConnectResponse([event], true);
        const response = toSendMessageResponse(event);
        const fields = preEncodedFields(response);
        assert.ok(fields !== undefined, "the response is marked pre-encoded");
        assert.deepEqual(Buffer.concat(fields), Buffer.from(toBinary(SendMessageResponseSchema, response)), `${message.id}, ${first} first`);
      }
    }
  });
});
