import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ChatEvent, createSessionState, createWakeScheduler } from "../../server/core/chat-session.js";

function event(i: number, textBytes = 1): ChatEvent {
  return {
    id: `${i}`,
    sender: "s",
    channel: { name: "c", type: "group" },
    text: "x",
    textBytes,
    sentAt: new Date(0),
  };
}

describe("chat session", () => {
  it("queues in order up to its limit", () => {
    const s = createSessionState("u", { events: 3, bytes: 1e9 });
    assert.equal(s.push(event(1)), undefined);
    assert.equal(s.push(event(2)), undefined);
    assert.equal(s.push(event(3)), undefined);
    assert.match(String(s.push(event(4))?.message), /fell too far behind: 3 events were waiting/);
    assert.deepEqual(
      s.take(10, 1e6).map((e) => e.id),
      ["1", "2", "3"],
    );
    assert.equal(s.pending, 0);
  });

  it("takes batches bounded by count and by text size", () => {
    const s = createSessionState("u", { events: 100, bytes: 1e9 });
    for (let i = 0; i < 10; i++) s.push(event(i, 100));
    assert.deepEqual(
      s.take(3, 1e6).map((e) => e.id),
      ["0", "1", "2"],
    );
    assert.deepEqual(
      s.take(100, 250).map((e) => e.id),
      ["3", "4"],
    );
    // One event larger than the byte bound still goes out alone.
    assert.deepEqual(
      s.take(100, 10).map((e) => e.id),
      ["5"],
    );
    assert.equal(s.pending, 4);
    assert.deepEqual(
      s.take(100, 1e6).map((e) => e.id),
      ["6", "7", "8", "9"],
    );
  });

  it("keeps order across many partial takes", () => {
    const s = createSessionState("u", { events: 5000, bytes: 1e9 });
    let next = 0;
    const seen: string[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 97; i++) s.push(event(next++));
      for (const e of s.take(61, 1e9)) seen.push(e.id);
    }
    for (const e of s.take(1e9, 1e9)) seen.push(e.id);
    assert.deepEqual(
      seen,
      Array.from({ length: next }, (_, i) => `${i}`),
    );
  });

  it("wakes a waiter on a new event and on end", async () => {
    const s = createSessionState("u", { events: 10, bytes: 1e9 });
    let woke = false;
    const waiting = s.wait().then(() => (woke = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false);
    s.push(event(1));
    await waiting;
    assert.equal(woke, true);
    // Resolves at once while events wait.
    await s.wait();
    s.take(10, 1e6);
    const ended = s.wait();
    s.end(new Error("bye"));
    await ended;
    assert.equal(s.signal.aborted, true);
    assert.equal((s.signal.reason as Error).message, "bye");
  });

  it("defers wake-ups to the end of the turn, so that one take sees the whole burst", async () => {
    const s = createSessionState("u", { events: 100, bytes: 1e9 }, createWakeScheduler());
    let taken: number | undefined;
    const reader = s.wait().then(() => (taken = s.take(100, 1e6).length));
    s.push(event(1));
    await Promise.resolve();
    s.push(event(2));
    // Microtasks have run, but the wake-up waits for setImmediate.
    assert.equal(taken, undefined);
    s.push(event(3));
    await reader;
    assert.equal(taken, 3);
  });

  it("drops its queue and ignores pushes once ended", () => {
    const s = createSessionState("u", { events: 2, bytes: 1e9 });
    s.push(event(1));
    s.end(undefined);
    assert.equal(s.pending, 0);
    assert.equal(s.push(event(2)), undefined);
    assert.equal(s.pending, 0);
    s.end(new Error("second end is ignored"));
    assert.notEqual((s.signal.reason as Error).message, "second end is ignored");
  });
});
