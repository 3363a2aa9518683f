import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkHistory } from "../../bench/chaos/check-history.js";
import type { EventEntry, HistoryEntry } from "../../bench/chaos/history.js";

/**
 * The chaos checker on small histories written by hand: a clean one passes,
 * and each kind of broken guarantee is reported by its check (the short
 * run in chaos-run.test.ts shows the cluster keeps them; this shows the
 * checker would say so if it did not).
 */
const start: HistoryEntry = { type: "phase", name: "start", t: 0, settings: { leaseMs: 2000, deliveryMs: 3000, livenessMs: 15000 } };

/** A user's session on a node, connected at t=10 and in group g0 from t=30, stopped by its client at t=10000. */
function member(user: string, node: number, events: [number, string, string][], end = { t: 10_000, how: "stopped" }): HistoryEntry[] {
  const session = `${user}/1`;
  const stream = `${session}.1`;
  const delivered: EventEntry[] = events.map(([t, sender, text]) => ({
    type: "event",
    client: user,
    session,
    stream,
    t,
    kind: "message",
    channel: "g0",
    channelType: "group",
    sender,
    text,
  }));
  return [
    { type: "call", client: user, session, op: "connect", start: 5, end: 10, outcome: "ok" },
    { type: "stream-open", client: user, user, session, stream, node, t: 10, resumed: false, lostEvents: 0 },
    { type: "call", client: user, session, op: "join", target: "g0", start: 20, end: 30, outcome: "ok" },
    { type: "event", client: user, session, stream, t: 30, kind: "member-joined", channel: "g0", username: user },
    ...delivered,
    { type: "stream-end", client: user, session, stream, t: end.t, how: end.how, resuming: false },
  ];
}

/** Two acknowledged sends to g0 by alice: "alice 1" at 100-110, "alice 2" at 200-210. */
const sends: HistoryEntry[] = [
  { type: "call", client: "alice", session: "alice/1", op: "send", target: "g0", text: "alice 1", start: 100, end: 110, outcome: "ok" },
  { type: "call", client: "alice", session: "alice/1", op: "send", target: "g0", text: "alice 2", start: 200, end: 210, outcome: "ok" },
];
const both: [number, string, string][] = [
  [105, "alice", "alice 1"],
  [205, "alice", "alice 2"],
];

const checksFailed = (history: HistoryEntry[]) => [...new Set(checkHistory(history).violations.map((v) => v.check))];

describe("the chaos checker", () => {
  it("finds nothing wrong in a history that keeps every guarantee", () => {
    const result = checkHistory([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends]);
    assert.deepEqual(result.violations, []);
    assert.equal(result.deliveries, 4);
    assert.ok(result.examined["no-silent-loss"] >= 4 && result.examined["total-order"] >= 2);
  });

  it("reports a message that a member whose stream stayed open never received", () => {
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, [[205, "alice", "alice 2"]]), ...sends]), ["no-silent-loss"]);
  });

  it("lets a stream that ended with an error miss what came after the last message it received, never what came before", () => {
    const ended = { t: 150, how: "Unavailable" };
    assert.deepEqual(
      checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, [[105, "alice", "alice 1"]], { t: 250, how: "Unavailable" }), ...sends]),
      [],
    );
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, [], ended), ...sends]), []);
    assert.deepEqual(
      checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, [[205, "alice", "alice 2"]], { t: 250, how: "Unavailable" }), ...sends]),
      ["no-silent-loss"],
    );
  });

  it("judges loss channel by channel on a Redis Cluster, across a session's channels on one Redis", () => {
    const cluster: HistoryEntry = { ...start, settings: { ...(start.type === "phase" ? start.settings : {}), topology: "redis-cluster" } };
    // bob missed "alice 1" on g0, then received a direct message sent later, and his stream ended with an error.
    const direct: HistoryEntry[] = [
      { type: "call", client: "alice", session: "alice/1", op: "send", target: "bob", text: "alice 3", start: 150, end: 160, outcome: "ok" },
      {
        type: "event",
        client: "bob",
        session: "bob/1",
        stream: "bob/1.1",
        t: 170,
        kind: "message",
        channel: "bob",
        channelType: "user",
        sender: "alice",
        text: "alice 3",
      },
    ];
    const bob = member("bob", 1, [], { t: 180, how: "Unavailable" });
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...bob, ...sends, ...direct]), ["no-silent-loss"]);
    assert.deepEqual(checksFailed([cluster, ...member("alice", 0, both), ...bob, ...sends, ...direct]), []);
    // On the cluster too, a later message on the same channel makes the loss silent.
    const later = member("bob", 1, [[205, "alice", "alice 2"]], { t: 250, how: "Unavailable" });
    assert.deepEqual(checksFailed([cluster, ...member("alice", 0, both), ...later, ...sends]), ["no-silent-loss"]);
  });

  it("reports two members that saw a group's messages in different orders, and a sender's messages out of order", () => {
    const swapped: [number, string, string][] = [
      [205, "alice", "alice 2"],
      [206, "alice", "alice 1"],
    ];
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, swapped), ...sends]).sort(), ["sender-fifo", "total-order"]);
  });

  it("reports a message delivered twice, one never sent, and one delivered before the member's own join", () => {
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, [...both, [207, "alice", "alice 2"]]), ...sends]), [
      "no-duplicates",
    ]);
    assert.deepEqual(checksFailed([start, ...member("alice", 0, [...both, [300, "alice", "alice 9"]]), ...sends]), ["no-phantoms"]);
    const early: HistoryEntry = {
      type: "call",
      client: "alice",
      session: "alice/1",
      op: "send",
      target: "g0",
      text: "alice 0",
      start: 1,
      end: 2,
      outcome: "ok",
    };
    assert.deepEqual(checksFailed([start, ...member("alice", 0, [[31, "alice", "alice 0"], ...both]), early, ...sends]), ["membership"]);
  });

  it("dates a membership from the join that made it, not from a retry the server refused", () => {
    // bob's join times out (it went through, slowly), his retry is refused as already done, and his MemberJoined comes after both began.
    const slowJoin = (firstJoinStart: number): HistoryEntry[] =>
      member("bob", 1, [[55, "alice", "alice 0"], ...both]).flatMap((e): HistoryEntry[] =>
        e.type === "call" && e.op === "join"
          ? [
              { ...e, start: firstJoinStart, end: firstJoinStart + 30, outcome: "unknown" },
              { ...e, start: 40, end: 60, outcome: "error:AlreadyExists" },
            ]
          : e.type === "event" && e.kind === "member-joined"
            ? [{ ...e, t: 50 }]
            : [e],
      );
    const acknowledgedAt35: HistoryEntry = {
      type: "call",
      client: "alice",
      session: "alice/1",
      op: "send",
      target: "g0",
      text: "alice 0",
      start: 33,
      end: 35,
      outcome: "ok",
    };
    const alice = member("alice", 0, [[34, "alice", "alice 0"], ...both]);
    assert.deepEqual(checksFailed([start, ...alice, ...slowJoin(20), acknowledgedAt35, ...sends]), []);
    // Had the first join begun after the send was acknowledged, bob could not have been a member when it was sent.
    assert.deepEqual(checksFailed([start, ...alice, ...slowJoin(36), acknowledgedAt35, ...sends]), ["membership"]);
  });

  it("reports a stream that a node paused past its lease kept open, and a node that served no new session after the faults", () => {
    const pause: HistoryEntry = { type: "fault", kind: "pause", target: "node-1", start: 1000, end: 4000 };
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, pause]), ["paused-node"]);
    assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both, { t: 4500, how: "Unavailable" }), ...sends, pause]), []);
    const over: HistoryEntry = { type: "phase", name: "faults-over", t: 5000 };
    const probe: HistoryEntry = {
      type: "call",
      client: "probe0",
      session: "probe0/1",
      op: "probe",
      target: "node-0",
      start: 5000,
      end: 21_000,
      outcome: "unknown",
    };
    assert.deepEqual(checksFailed([start, over, probe]), ["liveness"]);
  });

  it("reports a session that still receives for a name another client took over", () => {
    const usurper: HistoryEntry[] = [
      { type: "stream-open", client: "flood1", user: "bob", session: "flood1/1", stream: "flood1/1.1", node: 2, t: 150, resumed: false, lostEvents: 0 },
      { type: "stream-end", client: "flood1", session: "flood1/1", stream: "flood1/1.1", t: 400, how: "stopped", resuming: false },
    ];
    assert.ok(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, ...usurper]).includes("unique-names"));
  });
});
