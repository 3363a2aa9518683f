import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatError, type ChatErrorKind } from "../../server/core/chat-error.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import { createMemoryBackend } from "../../server/core/memory-backend.js";
import { messages } from "../helpers/session-events.js";

function throwsKind(fn: () => unknown, kind: ChatErrorKind, messagePart?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChatError, `expected a ChatError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    if (messagePart !== undefined) assert.ok(error.message.includes(messagePart), error.message);
    return true;
  });
}

const texts = (session: ChatSession) => messages(session.take(1e9, 1e9)).map((e) => e.text);

describe("in-memory backend", () => {
  it("connects a user once and frees the name on disconnect", () => {
    const backend = createMemoryBackend();
    const alice = backend.connect("alice");
    assert.equal(backend.isOnline("alice"), true);
    throwsKind(() => backend.connect("alice"), "already-exists", '"alice"');
    backend.disconnect(alice);
    assert.equal(backend.isOnline("alice"), false);
    assert.equal(alice.signal.aborted, true);
    const again = backend.connect("alice");
    assert.notEqual(again, alice);
    // A late disconnect of the old session must not evict the new one.
    backend.disconnect(alice);
    assert.equal(backend.isOnline("alice"), true);
  });

  it("rejects malformed usernames and names that are groups", () => {
    const backend = createMemoryBackend();
    throwsKind(() => backend.connect(""), "invalid-input", "empty");
    throwsKind(() => backend.connect("a".repeat(33)), "invalid-input", "33 characters");
    throwsKind(() => backend.connect("al ice"), "invalid-input", '"al ice"');
    throwsKind(() => backend.connect("zoë"), "invalid-input");
    backend.connect("a".repeat(32));
    backend.connect("A.b-c_9");
    backend.connect("owner");
    backend.createGroup("owner", "room");
    throwsKind(() => backend.connect("room"), "already-exists", "group");
    assert.equal(backend.stats().users, 3);
  });

  it("joins and leaves groups with the documented errors", () => {
    const backend = createMemoryBackend();
    backend.connect("alice");
    backend.connect("bob");
    backend.createGroup("alice", "room");
    throwsKind(() => backend.joinGroup("bob", "nope"), "not-found", '"nope"');
    throwsKind(() => backend.joinGroup("bob", ""), "invalid-input");
    backend.joinGroup("bob", "room");
    throwsKind(() => backend.joinGroup("bob", "room"), "already-exists", "already a member");
    throwsKind(() => backend.leaveGroup("bob", "nope"), "not-found");
    backend.leaveGroup("bob", "room");
    throwsKind(() => backend.leaveGroup("bob", "room"), "not-a-member", '"bob"');
    throwsKind(() => backend.joinGroup("carol", "room"), "not-signed-in");
  });

  it("deletes a group when its last member leaves or disconnects", () => {
    const backend = createMemoryBackend();
    const alice = backend.connect("alice");
    backend.connect("bob");
    backend.createGroup("alice", "a");
    backend.createGroup("alice", "b");
    backend.joinGroup("bob", "b");
    backend.leaveGroup("alice", "a");
    assert.equal(backend.stats().groups, 1);
    throwsKind(() => backend.joinGroup("bob", "a"), "not-found");
    backend.disconnect(alice);
    assert.deepEqual(backend.listChannels(), [
      { name: "b", type: "group" },
      { name: "bob", type: "user" },
    ]);
    backend.leaveGroup("bob", "b");
    assert.equal(backend.stats().groups, 0);
    // The freed group name can now be a username.
    backend.connect("b");
  });

  it("delivers direct messages once, also to oneself", () => {
    let n = 0;
    const at = new Date("2026-01-02T03:04:05.678Z");
    const backend = createMemoryBackend({ newId: () => `id-${++n}`, now: () => at });
    const alice = backend.connect("alice");
    const bob = backend.connect("bob");
    const event = backend.send("alice", "bob", "hello bob");
    assert.deepEqual(event, {
      kind: "message",
      id: "id-1",
      sender: "alice",
      channel: { name: "bob", type: "user" },
      text: "hello bob",
      textBytes: 9,
      sentAt: at,
      // Queued for bob alone, and kept in the pair's history.
      holders: 2,
    });
    assert.deepEqual(bob.take(10, 1e6), [event]);
    assert.equal(alice.pending, 0);
    backend.send("alice", "alice", "note to self");
    assert.deepEqual(texts(alice), ["note to self"]);
    throwsKind(() => backend.send("alice", "nobody", "x"), "not-found", '"nobody"');
    throwsKind(() => backend.send("alice", "bad/name", "x"), "invalid-input");
  });

  it("delivers a group message to every member, sender included, and only members may send", () => {
    const backend = createMemoryBackend();
    const alice = backend.connect("alice");
    const bob = backend.connect("bob");
    const carol = backend.connect("carol");
    backend.createGroup("alice", "room");
    backend.joinGroup("bob", "room");
    throwsKind(() => backend.send("carol", "room", "let me in"), "not-allowed", '"room"');
    const event = backend.send("bob", "room", "hi all");
    assert.deepEqual(event.channel, { name: "room", type: "group" });
    assert.deepEqual(alice.take(10, 1e6), [event]);
    assert.deepEqual(bob.take(10, 1e6), [event]);
    assert.equal(carol.pending, 0);
  });

  it("checks the text: 1 to 4096 bytes of UTF-8", () => {
    const backend = createMemoryBackend();
    const alice = backend.connect("alice");
    throwsKind(() => backend.send("alice", "alice", ""), "invalid-input", "empty");
    backend.send("alice", "alice", "x".repeat(4096));
    // 1366 three-byte characters are 4098 bytes, though only 1366 UTF-16 units.
    throwsKind(() => backend.send("alice", "alice", "€".repeat(1366)), "invalid-input", "4098 bytes");
    throwsKind(() => backend.send("alice", "alice", "x".repeat(4097)), "invalid-input", "4097 bytes");
    assert.equal(alice.pending, 1);
  });

  it("gives every message a unique id", () => {
    const backend = createMemoryBackend();
    const alice = backend.connect("alice");
    for (let i = 0; i < 1000; i++) backend.send("alice", "alice", `m${i}`);
    const ids = new Set(messages(alice.take(1e9, 1e9)).map((e) => e.id));
    assert.equal(ids.size, 1000);
  });

  it("keeps one order for all members of a group", () => {
    const backend = createMemoryBackend();
    const members = ["a", "b", "c", "d"].map((name) => backend.connect(name));
    backend.createGroup("a", "room");
    for (const m of members.slice(1)) backend.joinGroup(m.username, "room");
    for (let i = 0; i < 100; i++) backend.send(members[i % 4]!.username, "room", `m${i}`);
    const orders = members.map(texts);
    for (const order of orders) assert.deepEqual(order, orders[0]);
    assert.equal(orders[0]!.length, 100);
  });

  it("cuts off a session whose queue is full, and leaves the others alone", () => {
    const backend = createMemoryBackend({ queueLimit: 3 });
    const slow = backend.connect("slow");
    const fast = backend.connect("fast");
    backend.createGroup("fast", "room");
    backend.joinGroup("slow", "room");
    for (let i = 0; i < 3; i++) {
      backend.send("fast", "room", `m${i}`);
      texts(fast);
    }
    assert.equal(slow.pending, 3);
    assert.equal(slow.signal.aborted, false);
    backend.send("fast", "room", "one too many");
    assert.deepEqual(texts(fast), ["one too many"]);
    assert.equal(slow.signal.aborted, true);
    const reason = slow.signal.reason as ChatError;
    assert.equal(reason.kind, "exhausted");
    assert.match(reason.message, /"slow" fell too far behind: 3 events/);
    // Cut off means gone: name free, out of the group, queue dropped.
    assert.equal(backend.isOnline("slow"), false);
    assert.equal(slow.pending, 0);
    backend.send("fast", "room", "still fine");
    assert.deepEqual(texts(fast), ["still fine"]);
    throwsKind(() => backend.send("fast", "slow", "x"), "not-found");
  });

  it("deletes a group whose only member is cut off while it sends", () => {
    const backend = createMemoryBackend({ queueLimit: 1 });
    backend.connect("solo");
    backend.createGroup("solo", "room");
    backend.send("solo", "room", "first");
    backend.send("solo", "room", "second");
    assert.equal(backend.isOnline("solo"), false);
    assert.equal(backend.stats().groups, 0);
  });

  it("limits the groups one user may be in", () => {
    const backend = createMemoryBackend({ maxGroupsPerUser: 2 });
    backend.connect("alice");
    backend.connect("bob");
    backend.createGroup("alice", "g1");
    backend.createGroup("alice", "g2");
    throwsKind(() => backend.createGroup("alice", "g3"), "exhausted", "2 groups");
    backend.createGroup("bob", "g3");
    throwsKind(() => backend.joinGroup("alice", "g3"), "exhausted");
    backend.leaveGroup("alice", "g1");
    backend.joinGroup("alice", "g3");
    // g1 went with its only member.
    assert.deepEqual(
      backend
        .listChannels()
        .filter((c) => c.type === "group")
        .map((c) => c.name),
      ["g2", "g3"],
    );
  });

  it("sorts channels by name, users and groups together", () => {
    const backend = createMemoryBackend();
    for (const name of ["zed", "Bob", "amy", "_x", "9"]) backend.connect(name);
    backend.createGroup("amy", "m-room");
    backend.createGroup("amy", "A.room");
    assert.deepEqual(
      backend.listChannels().map((c) => c.name),
      ["9", "A.room", "Bob", "_x", "amy", "m-room", "zed"],
    );
  });
  it("sheds history only while that frees memory: what is still queued stays in history, and the slow reader is cut off", () => {
    const backend = createMemoryBackend({ maxQueuedBytes: 100_000, queueLimitBytes: 1 << 20, queueLimit: 10_000 });
    const sender = backend.connect("sender");
    const slow = backend.connect("slow");
    backend.createGroup("sender", "busy");
    backend.joinGroup("slow", "busy");
    backend.createGroup("sender", "quiet");
    for (let i = 0; i < 5; i++) backend.send("sender", "quiet", `q${i}`);
    // Each weighs 2 × 2,000 + 700: the slow reader's queue passes the total after about 21.
    for (let i = 0; slow.signal.aborted === false && i < 100; i++) {
      backend.send("sender", "busy", "b".repeat(2000));
      // The sender reads what reaches it (its own group messages); only the slow reader falls behind.
      sender.take(1e9, 1e12);
      sender.written();
    }
    assert.equal(slow.signal.aborted, true);
    // The history's own messages went first; those the queue held were not wiped for nothing.
    assert.ok(backend.history.size > 0, `history was wiped: ${backend.history.size} messages left`);
    backend.close();
  });
});
