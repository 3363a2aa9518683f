import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBackendSession } from "../../server/core/backend-session.js";
import { type ChatEvent, queuedEventBytes } from "../../server/core/session-event.js";
import { createWakeScheduler } from "../../server/core/wake-scheduler.js";
import { messages } from "../helpers/session-events.js";

function event(i: number, textBytes = 1): ChatEvent {
  return {
    kind: "message",
    id: `${i}`,
    sender: "s",
    channel: { name: "c", type: "group" },
    text: "x",
    textBytes,
    sentAt: new Date(0),
  };
}

describe("backend session", () => {
  it("queues in order up to its limit", () => {
    const s = createBackendSession("u", { events: 3, bytes: 1e9 });
    assert.equal(s.push(event(1)), undefined);
    assert.equal(s.push(event(2)), undefined);
    assert.equal(s.push(event(3)), undefined);
    assert.match(String(s.push(event(4))?.message), /fell too far behind: 3 events were waiting/);
    assert.deepEqual(
      messages(s.take(10, 1e6)).map((e) => e.id),
      ["1", "2", "3"],
    );
    assert.equal(s.pending, 0);
  });

  it("takes batches bounded by count and by text size", () => {
    const s = createBackendSession("u", { events: 100, bytes: 1e9 });
    for (let i = 0; i < 10; i++) s.push(event(i, 100));
    assert.deepEqual(
      messages(s.take(3, 1e6)).map((e) => e.id),
      ["0", "1", "2"],
    );
    assert.deepEqual(
      messages(s.take(100, 250)).map((e) => e.id),
      ["3", "4"],
    );
    // One event larger than the byte bound still goes out alone.
    assert.deepEqual(
      messages(s.take(100, 10)).map((e) => e.id),
      ["5"],
    );
    assert.equal(s.pending, 4);
    assert.deepEqual(
      messages(s.take(100, 1e6)).map((e) => e.id),
      ["6", "7", "8", "9"],
    );
  });

  it("keeps order across many partial takes", () => {
    const s = createBackendSession("u", { events: 5000, bytes: 1e9 });
    let next = 0;
    const seen: string[] = [];
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 97; i++) s.push(event(next++));
      for (const e of messages(s.take(61, 1e9))) seen.push(e.id);
    }
    for (const e of messages(s.take(1e9, 1e9))) seen.push(e.id);
    assert.deepEqual(
      seen,
      Array.from({ length: next }, (_, i) => `${i}`),
    );
  });

  it("wakes a waiter on a new event and on end", async () => {
    const s = createBackendSession("u", { events: 10, bytes: 1e9 });
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
    const s = createBackendSession("u", { events: 100, bytes: 1e9 }, createWakeScheduler());
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
    const s = createBackendSession("u", { events: 2, bytes: 1e9 });
    s.push(event(1));
    s.end(undefined);
    assert.equal(s.pending, 0);
    assert.equal(s.push(event(2)), undefined);
    assert.equal(s.pending, 0);
    s.end(new Error("second end is ignored"));
    assert.notEqual((s.signal.reason as Error).message, "second end is ignored");
  });
});

describe("resumable backend session", () => {
  const history = { events: 3, bytes: 1e9 };

  it("keeps what it delivered, within its history, and replays it after a rewind", () => {
    const s = createBackendSession("u", { events: 100, bytes: 1e9 }, undefined, undefined, { history });
    assert.ok(s.resumeToken !== undefined && s.resumeToken.length >= 32);
    for (let i = 0; i < 5; i++) s.push(event(i));
    assert.deepEqual(
      messages(s.take(2, 1e9)).map((e) => e.id),
      ["0", "1"],
    );
    s.written();
    assert.deepEqual(
      messages(s.take(2, 1e9)).map((e) => e.id),
      ["2", "3"],
    );
    // "2" and "3" are in flight, "1" and "0" written: the history keeps the last three delivered.
    assert.equal(s.rewind(5), undefined, "more than was delivered");
    assert.equal(s.rewind(0), 0, "in flight and history together hold all four");
    // Every event waits again, and each counts once in the session's bytes.
    assert.equal(s.pendingBytes, 5 * queuedEventBytes(event(0)));
    assert.deepEqual(
      messages(s.take(10, 1e9)).map((e) => e.id),
      ["0", "1", "2", "3", "4"],
    );
    s.written();
    assert.equal(s.rewind(1), 1, "only the last three are kept: one of the four missed is lost");
    assert.deepEqual(
      messages(s.take(10, 1e9)).map((e) => e.id),
      ["2", "3", "4"],
    );
  });

  it("counts its history in the budget until it is dropped", () => {
    const budget = { limitBytes: 1e9, usedBytes: 0 };
    const s = createBackendSession("u", { events: 100, bytes: 1e9 }, undefined, budget, { history });
    s.push(event(1));
    const held = budget.usedBytes;
    s.take(10, 1e9);
    s.written();
    assert.equal(budget.usedBytes, held);
    assert.equal(s.pendingBytes, 0);
    s.dropHistory();
    assert.equal(budget.usedBytes, 0);
    assert.equal(s.rewind(0), 1);
  });

  it("wakes the stream it replaces, whose signal says so", async () => {
    const s = createBackendSession("u", { events: 100, bytes: 1e9 }, undefined, undefined, { history });
    const first = s.attachStream();
    const waiting = s.wait();
    const second = s.attachStream();
    await waiting;
    assert.equal(first.aborted, true);
    assert.equal(second.aborted, false);
    s.end("bye");
    assert.equal(second.aborted, true);
  });

  it("keeps no more history than its queue holds, since a resume puts the history back in it", () => {
    const s = createBackendSession("u", { events: 2, bytes: 1e9 }, undefined, undefined, { history: { events: 100, bytes: 1e9 } });
    for (let i = 0; i < 5; i++) {
      s.push(event(i));
      s.take(10, 1e9);
      s.written();
    }
    assert.equal(s.rewind(0), 3);
    assert.equal(s.pending, 2);
  });

  it("has no resume token and keeps nothing without a history", () => {
    const budget = { limitBytes: 1e9, usedBytes: 0 };
    const s = createBackendSession("u", { events: 100, bytes: 1e9 }, undefined, budget);
    assert.equal(s.resumeToken, undefined);
    s.push(event(1));
    s.take(10, 1e9);
    s.written();
    assert.equal(budget.usedBytes, 0);
    assert.equal(s.hasResumeToken(""), false);
  });
});
