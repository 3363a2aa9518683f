import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatError, type ChatErrorKind } from "../../server/core/chat-error.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import { createMemoryBackend } from "../../server/core/memory-backend.js";

function throwsKind(fn: () => unknown, kind: ChatErrorKind, messagePart?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChatError, `expected a ChatError, got ${String(error)}`);
    assert.equal(error.kind, kind);
    if (messagePart !== undefined) assert.ok(error.message.includes(messagePart), error.message);
    return true;
  });
}

const texts = (session: ChatSession) => session.take(1e9, 1e9).map((e) => e.text);

describe("chat hub", () => {
  it("connects a user once and frees the name on disconnect", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    assert.equal(hub.isOnline("alice"), true);
    throwsKind(() => hub.connect("alice"), "already-exists", '"alice"');
    hub.disconnect(alice);
    assert.equal(hub.isOnline("alice"), false);
    assert.equal(alice.signal.aborted, true);
    const again = hub.connect("alice");
    assert.notEqual(again, alice);
    // A late disconnect of the old session must not evict the new one.
    hub.disconnect(alice);
    assert.equal(hub.isOnline("alice"), true);
  });

  it("rejects malformed usernames and names that are groups", () => {
    const hub = createMemoryBackend();
    throwsKind(() => hub.connect(""), "invalid-input", "empty");
    throwsKind(() => hub.connect("a".repeat(33)), "invalid-input", "33 characters");
    throwsKind(() => hub.connect("al ice"), "invalid-input", '"al ice"');
    throwsKind(() => hub.connect("zoë"), "invalid-input");
    hub.connect("a".repeat(32));
    hub.connect("A.b-c_9");
    hub.connect("owner");
    hub.createGroup("owner", "room");
    throwsKind(() => hub.connect("room"), "already-exists", "group");
    assert.equal(hub.stats().users, 3);
  });

  it("creates a group with its creator as the only member", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    hub.connect("bob");
    hub.createGroup("alice", "room");
    throwsKind(() => hub.createGroup("bob", "room"), "already-exists", '"room"');
    throwsKind(() => hub.createGroup("alice", "bob"), "already-exists", "online user");
    throwsKind(() => hub.createGroup("alice", "bad name"), "invalid-input");
    throwsKind(() => hub.createGroup("nobody", "other"), "not-signed-in");
    hub.send("alice", "room", "hi");
    assert.deepEqual(texts(alice), ["hi"]);
    assert.deepEqual(hub.listChannels(), [
      { name: "alice", type: "user" },
      { name: "bob", type: "user" },
      { name: "room", type: "group" },
    ]);
  });

  it("joins and leaves groups with the documented errors", () => {
    const hub = createMemoryBackend();
    hub.connect("alice");
    hub.connect("bob");
    hub.createGroup("alice", "room");
    throwsKind(() => hub.joinGroup("bob", "nope"), "not-found", '"nope"');
    throwsKind(() => hub.joinGroup("bob", ""), "invalid-input");
    hub.joinGroup("bob", "room");
    throwsKind(() => hub.joinGroup("bob", "room"), "already-exists", "already a member");
    throwsKind(() => hub.leaveGroup("bob", "nope"), "not-found");
    hub.leaveGroup("bob", "room");
    throwsKind(() => hub.leaveGroup("bob", "room"), "not-a-member", '"bob"');
    throwsKind(() => hub.joinGroup("carol", "room"), "not-signed-in");
  });

  it("deletes a group when its last member leaves or disconnects", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    hub.connect("bob");
    hub.createGroup("alice", "a");
    hub.createGroup("alice", "b");
    hub.joinGroup("bob", "b");
    hub.leaveGroup("alice", "a");
    assert.equal(hub.stats().groups, 1);
    throwsKind(() => hub.joinGroup("bob", "a"), "not-found");
    hub.disconnect(alice);
    assert.deepEqual(hub.listChannels(), [
      { name: "b", type: "group" },
      { name: "bob", type: "user" },
    ]);
    hub.leaveGroup("bob", "b");
    assert.equal(hub.stats().groups, 0);
    // The freed group name can now be a username.
    hub.connect("b");
  });

  it("delivers direct messages once, also to oneself", () => {
    let n = 0;
    const at = new Date("2026-01-02T03:04:05.678Z");
    const hub = createMemoryBackend({ newId: () => `id-${++n}`, now: () => at });
    const alice = hub.connect("alice");
    const bob = hub.connect("bob");
    const event = hub.send("alice", "bob", "hello bob");
    assert.deepEqual(event, {
      id: "id-1",
      sender: "alice",
      channel: { name: "bob", type: "user" },
      text: "hello bob",
      textBytes: 9,
      sentAt: at,
      // Queued for bob alone.
      holders: 1,
    });
    assert.deepEqual(bob.take(10, 1e6), [event]);
    assert.equal(alice.pending, 0);
    hub.send("alice", "alice", "note to self");
    assert.deepEqual(texts(alice), ["note to self"]);
    throwsKind(() => hub.send("alice", "nobody", "x"), "not-found", '"nobody"');
    throwsKind(() => hub.send("alice", "bad/name", "x"), "invalid-input");
  });

  it("delivers a group message to every member, sender included, and only members may send", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    const bob = hub.connect("bob");
    const carol = hub.connect("carol");
    hub.createGroup("alice", "room");
    hub.joinGroup("bob", "room");
    throwsKind(() => hub.send("carol", "room", "let me in"), "not-allowed", '"room"');
    const event = hub.send("bob", "room", "hi all");
    assert.deepEqual(event.channel, { name: "room", type: "group" });
    assert.deepEqual(alice.take(10, 1e6), [event]);
    assert.deepEqual(bob.take(10, 1e6), [event]);
    assert.equal(carol.pending, 0);
  });

  it("checks the text: 1 to 4096 bytes of UTF-8", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    throwsKind(() => hub.send("alice", "alice", ""), "invalid-input", "empty");
    hub.send("alice", "alice", "x".repeat(4096));
    // 1366 three-byte characters are 4098 bytes, though only 1366 UTF-16 units.
    throwsKind(() => hub.send("alice", "alice", "€".repeat(1366)), "invalid-input", "4098 bytes");
    throwsKind(() => hub.send("alice", "alice", "x".repeat(4097)), "invalid-input", "4097 bytes");
    assert.equal(alice.pending, 1);
  });

  it("gives every message a unique id", () => {
    const hub = createMemoryBackend();
    const alice = hub.connect("alice");
    for (let i = 0; i < 1000; i++) hub.send("alice", "alice", `m${i}`);
    const ids = new Set(alice.take(1e9, 1e9).map((e) => e.id));
    assert.equal(ids.size, 1000);
  });

  it("keeps one order for all members of a group", () => {
    const hub = createMemoryBackend();
    const members = ["a", "b", "c", "d"].map((name) => hub.connect(name));
    hub.createGroup("a", "room");
    for (const m of members.slice(1)) hub.joinGroup(m.username, "room");
    for (let i = 0; i < 100; i++) hub.send(members[i % 4]!.username, "room", `m${i}`);
    const orders = members.map(texts);
    for (const order of orders) assert.deepEqual(order, orders[0]);
    assert.equal(orders[0]!.length, 100);
  });

  it("cuts off a session whose queue is full, and leaves the others alone", () => {
    const hub = createMemoryBackend({ queueLimit: 3 });
    const slow = hub.connect("slow");
    const fast = hub.connect("fast");
    hub.createGroup("fast", "room");
    hub.joinGroup("slow", "room");
    for (let i = 0; i < 3; i++) {
      hub.send("fast", "room", `m${i}`);
      texts(fast);
    }
    assert.equal(slow.pending, 3);
    assert.equal(slow.signal.aborted, false);
    hub.send("fast", "room", "one too many");
    assert.deepEqual(texts(fast), ["one too many"]);
    assert.equal(slow.signal.aborted, true);
    const reason = slow.signal.reason as ChatError;
    assert.equal(reason.kind, "exhausted");
    assert.match(reason.message, /"slow" fell too far behind: 3 events/);
    // Cut off means gone: name free, out of the group, queue dropped.
    assert.equal(hub.isOnline("slow"), false);
    assert.equal(slow.pending, 0);
    hub.send("fast", "room", "still fine");
    assert.deepEqual(texts(fast), ["still fine"]);
    throwsKind(() => hub.send("fast", "slow", "x"), "not-found");
  });

  it("deletes a group whose only member is cut off while it sends", () => {
    const hub = createMemoryBackend({ queueLimit: 1 });
    hub.connect("solo");
    hub.createGroup("solo", "room");
    hub.send("solo", "room", "first");
    hub.send("solo", "room", "second");
    assert.equal(hub.isOnline("solo"), false);
    assert.equal(hub.stats().groups, 0);
  });

  it("limits the groups one user may be in", () => {
    const hub = createMemoryBackend({ maxGroupsPerUser: 2 });
    hub.connect("alice");
    hub.connect("bob");
    hub.createGroup("alice", "g1");
    hub.createGroup("alice", "g2");
    throwsKind(() => hub.createGroup("alice", "g3"), "exhausted", "2 groups");
    hub.createGroup("bob", "g3");
    throwsKind(() => hub.joinGroup("alice", "g3"), "exhausted");
    hub.leaveGroup("alice", "g1");
    hub.joinGroup("alice", "g3");
    // g1 went with its only member.
    assert.deepEqual(
      hub
        .listChannels()
        .filter((c) => c.type === "group")
        .map((c) => c.name),
      ["g2", "g3"],
    );
  });

  it("sorts channels by name, users and groups together", () => {
    const hub = createMemoryBackend();
    for (const name of ["zed", "Bob", "amy", "_x", "9"]) hub.connect(name);
    hub.createGroup("amy", "m-room");
    hub.createGroup("amy", "A.room");
    assert.deepEqual(
      hub.listChannels().map((c) => c.name),
      ["9", "A.room", "Bob", "_x", "amy", "m-room", "zed"],
    );
  });
});
