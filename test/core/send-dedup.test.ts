import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatError } from "../../server/core/chat-error.js";
import {
  checkRequestId,
  createSendDedup,
  type DedupBounds,
  defaultDedupBounds,
  maxRequestIdBytes,
  replayOf,
  textDigest,
} from "../../server/core/send-dedup.js";
import type { ChatEvent } from "../../server/core/session-event.js";

// The memory of request ids of one process on its own, with a fake clock.

let nextId = 0;

function sent(sender: string, channel: string, text: string, type: "group" | "user" = "user"): ChatEvent {
  return {
    kind: "message",
    id: `m${++nextId}`,
    sender,
    channel: { name: channel, type },
    text,
    textBytes: Buffer.byteLength(text, "utf8"),
    sentAt: new Date(1_700_000_000_000 + nextId),
    holders: 0,
  };
}

function setup(bounds: Partial<DedupBounds> = {}) {
  const clock = { now: 0 };
  const dedup = createSendDedup({ ...defaultDedupBounds, ...bounds }, () => clock.now);
  return { dedup, clock };
}

function throwsInvalidInput(fn: () => unknown, messagePart: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChatError, `expected a ChatError, got ${String(error)}`);
    assert.equal(error.kind, "invalid-input");
    assert.match(error.message, messagePart);
    return true;
  });
}

describe("send deduplication", () => {
  it("remembers a sender's request id with what answers a retry, not the text", () => {
    const { dedup } = setup();
    const event = sent("alice", "bob", "hello");
    dedup.remember("alice", "r1", event);
    const record = dedup.get("alice", "r1");
    assert.ok(record !== undefined);
    assert.equal(record.id, event.id);
    assert.equal(record.sentAt, event.sentAt);
    assert.deepEqual(record.channel, event.channel);
    assert.equal(record.digest, textDigest("hello"));
    assert.equal("text" in record, false);
    // Request ids are the sender's own: another sender's same id is another request.
    assert.equal(dedup.get("bob", "r1"), undefined);
    assert.equal(dedup.get("alice", "r2"), undefined);
    assert.equal(dedup.size, 1);
  });

  it("a retry gets the first call's message; another channel or text under the same id is invalid-input", () => {
    const { dedup } = setup();
    const event = sent("alice", "team", "hello", "group");
    dedup.remember("alice", "r1", event);
    const record = dedup.get("alice", "r1")!;
    const replay = replayOf(record, { sender: "alice", channel: "team", text: "hello", requestId: "r1" });
    assert.equal(replay.id, event.id);
    assert.equal(replay.sentAt, event.sentAt);
    assert.deepEqual(replay.channel, { name: "team", type: "group" });
    assert.equal(replay.text, "hello");
    assert.equal(replay.textBytes, 5);
    assert.equal(replay.sender, "alice");
    // Held by nothing: it is an answer, not a delivery.
    assert.equal(replay.holders, 0);
    throwsInvalidInput(() => replayOf(record, { sender: "alice", channel: "team", text: "hello!", requestId: "r1" }), /request_id "r1" was already used/);
    throwsInvalidInput(() => replayOf(record, { sender: "alice", channel: "other", text: "hello", requestId: "r1" }), /\(to "team"\)/);
  });

  it("forgets a request id once the window has passed, and remembers nothing with a window of 0", () => {
    const { dedup, clock } = setup({ windowMs: 1000 });
    dedup.remember("alice", "early", sent("alice", "bob", "a"));
    clock.now = 600;
    dedup.remember("alice", "later", sent("alice", "bob", "b"));
    clock.now = 1000;
    // Exactly the window old: still remembered.
    assert.ok(dedup.get("alice", "early") !== undefined);
    clock.now = 1001;
    assert.equal(dedup.get("alice", "early"), undefined);
    assert.ok(dedup.get("alice", "later") !== undefined);
    assert.equal(dedup.size, 1);
    clock.now = 1601;
    assert.equal(dedup.get("alice", "later"), undefined);
    assert.equal(dedup.size, 0);
    // Remembering expires too.
    dedup.remember("bob", "x", sent("bob", "alice", "c"));
    clock.now = 5000;
    dedup.remember("carol", "y", sent("carol", "alice", "d"));
    assert.equal(dedup.size, 1);

    const off = setup({ windowMs: 0 });
    assert.equal(off.dedup.enabled, false);
    off.dedup.remember("alice", "r1", sent("alice", "bob", "a"));
    assert.equal(off.dedup.get("alice", "r1"), undefined);
    assert.equal(off.dedup.size, 0);
  });

  it("bounds the ids per sender: the sender's oldest is forgotten, others' stay", () => {
    const { dedup } = setup({ perUser: 3 });
    dedup.remember("bob", "b0", sent("bob", "alice", "x"));
    for (let i = 0; i < 5; i++) dedup.remember("alice", `a${i}`, sent("alice", "bob", `${i}`));
    assert.equal(dedup.size, 4);
    assert.equal(dedup.get("alice", "a0"), undefined);
    assert.equal(dedup.get("alice", "a1"), undefined);
    for (const id of ["a2", "a3", "a4"]) assert.ok(dedup.get("alice", id) !== undefined, id);
    assert.ok(dedup.get("bob", "b0") !== undefined);
  });

  it("bounds the ids in all: the oldest of all is forgotten, whoever sent it", () => {
    const { dedup, clock } = setup({ total: 3 });
    for (const [i, user] of ["ann", "ben", "cat", "dan", "ann"].entries()) {
      clock.now = i;
      dedup.remember(user, `r${i}`, sent(user, "x", `${i}`));
    }
    assert.equal(dedup.size, 3);
    assert.equal(dedup.get("ann", "r0"), undefined);
    assert.equal(dedup.get("ben", "r1"), undefined);
    assert.ok(dedup.get("cat", "r2") !== undefined);
    assert.ok(dedup.get("dan", "r3") !== undefined);
    assert.ok(dedup.get("ann", "r4") !== undefined);
    // A sender forgotten entirely leaves nothing behind: it may send under its old ids again.
    dedup.remember("ben", "r1", sent("ben", "x", "again"));
    assert.equal(dedup.get("ben", "r1")?.digest, textDigest("again"));
  });

  it("a request id of up to 64 bytes of UTF-8 passes; a longer one is invalid-input", () => {
    assert.equal(maxRequestIdBytes, 64);
    checkRequestId("");
    checkRequestId("a".repeat(64));
    // 21 three-byte characters and one byte: 64 bytes, 22 characters.
    checkRequestId(`${"€".repeat(21)}a`);
    throwsInvalidInput(() => checkRequestId("a".repeat(65)), /request_id is 65 bytes of UTF-8; at most 64/);
    // 22 characters, 66 bytes: counted in bytes, not characters.
    throwsInvalidInput(() => checkRequestId("€".repeat(22)), /66 bytes/);
  });

  it("a digest tells texts apart and is the same for the same text", () => {
    assert.equal(textDigest("hello"), textDigest("hello"));
    assert.notEqual(textDigest("hello"), textDigest("hello "));
    assert.equal(textDigest("").length, 22);
  });
});
