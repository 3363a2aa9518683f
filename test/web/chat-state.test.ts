import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ChannelType, type ChatMessage, ChatMessageSchema } from "../../gen/chat/v1/chat_pb.js";
import { addHistory, conversation, receive, state } from "../../web/chat-state.js";

/** A message of #room with the given id, sent at that second. */
const message = (id: string, second: number): ChatMessage =>
  create(ChatMessageSchema, { id, sender: "bob", channel: { name: "room", type: ChannelType.GROUP }, text: id, sentAt: { seconds: BigInt(second) } });

/** The conversation's lines: message ids, and notes as "(note)". */
const lines = (key: string) => (state.conversations.get(key)?.lines ?? []).map((line) => ("message" in line ? line.message.id : `(${line.note})`));

describe("the page's conversations", () => {
  it("keeps each message once, from the stream or from history, in delivery order", () => {
    state.me = "alice";
    state.selected = "#room";
    const conv = conversation("#room", "room", "group");
    conv.lines.push({ note: "bob joined" });
    // The stream brought c and e before the latest page came.
    receive(message("c", 3));
    receive(message("e", 5));
    receive(message("e", 5));
    assert.deepEqual(lines("#room"), ["(bob joined)", "c", "e"]);
    // History has them too, and d between them (sent at the same second as e): it goes where history puts it.
    assert.equal(addHistory(conv, [message("a", 1), message("b", 2), message("c", 3), message("d", 5), message("e", 5)]), 3);
    assert.deepEqual(lines("#room"), ["a", "b", "(bob joined)", "c", "d", "e"]);
    // An older page goes first; a gap read after a resume, f after all it had, goes last, by time.
    assert.equal(addHistory(conv, [message("z", 0)]), 1);
    assert.equal(addHistory(conv, [message("e", 5), message("f", 6)]), 1);
    assert.deepEqual(lines("#room"), ["z", "a", "b", "(bob joined)", "c", "d", "e", "f"]);
    // And the stream bringing f again shows nothing new.
    receive(message("f", 6));
    assert.equal(lines("#room").length, 8);
  });

  it("places history with nothing in common by the server's time", () => {
    const conv = conversation("#other", "other", "group");
    conv.lines.push({ message: message("late", 10) });
    conv.ids.add("late");
    addHistory(conv, [message("early", 1), message("later", 11)]);
    assert.deepEqual(lines("#other"), ["early", "late", "later"]);
  });
});
