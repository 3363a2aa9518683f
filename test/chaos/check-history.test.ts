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

/** A message delivered: when, its sender and text, and (optionally) its id. */
type Delivery = [number, string, string] | [number, string, string, string];

/** A user's session on a node, connected at t=10 and in group g0 from t=30, stopped by its client at t=10000. */
function member(user: string, node: number, events: Delivery[], end = { t: 10_000, how: "stopped" }): HistoryEntry[] {
  const session = `${user}/1`;
  const stream = `${session}.1`;
  const delivered: EventEntry[] = events.map(([t, sender, text, id]) => ({
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
    ...(id === undefined ? {} : { id }),
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
const both: Delivery[] = [
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
    const swapped: Delivery[] = [
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
    // A retry whose own outcome is unknown too (its connection reset) made nothing either: the first may have.
    const unknownRetry = (firstJoinStart: number) =>
      slowJoin(firstJoinStart).map((e): HistoryEntry => (e.type === "call" && e.op === "join" && e.start === 40 ? { ...e, outcome: "unknown" } : e));
    assert.deepEqual(checksFailed([start, ...alice, ...unknownRetry(20), acknowledgedAt35, ...sends]), []);
    assert.deepEqual(checksFailed([start, ...alice, ...unknownRetry(36), acknowledgedAt35, ...sends]), ["membership"]);
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

  describe("sends retried with their request id", () => {
    /** "alice 1" to g0: its first attempt's outcome unknown (through node 0), its second acknowledged as m1 (through node 1). */
    const retried: HistoryEntry[] = [
      {
        type: "call",
        client: "alice",
        session: "alice/1",
        op: "send",
        target: "g0",
        text: "alice 1",
        requestId: "alice-1",
        attempt: 1,
        node: 0,
        start: 100,
        end: 103,
        outcome: "unknown",
      },
      {
        type: "call",
        client: "alice",
        session: "alice/1",
        op: "send",
        target: "g0",
        text: "alice 1",
        requestId: "alice-1",
        attempt: 2,
        node: 1,
        start: 104,
        end: 110,
        outcome: "ok",
        messageId: "m1",
      },
      {
        type: "call",
        client: "alice",
        session: "alice/1",
        op: "send",
        target: "g0",
        text: "alice 2",
        requestId: "alice-2",
        attempt: 1,
        start: 200,
        end: 210,
        outcome: "ok",
        messageId: "m2",
      },
    ];
    const once: Delivery[] = [
      [105, "alice", "alice 1", "m1"],
      [205, "alice", "alice 2", "m2"],
    ];

    it("take a retry answered with the first attempt's message, delivered once, as one send", () => {
      const result = checkHistory([start, ...member("alice", 0, once), ...member("bob", 1, once), ...retried]);
      assert.deepEqual(result.violations, []);
      assert.ok(result.examined["request-once"] >= 2 && result.examined["no-silent-loss"] >= 4);
    });

    it("report a retry delivered again to a member, as a second message", () => {
      const twice: Delivery[] = [
        [105, "alice", "alice 1", "m1"],
        [106, "alice", "alice 1", "m9"],
        [205, "alice", "alice 2", "m2"],
      ];
      assert.deepEqual(checksFailed([start, ...member("alice", 0, once), ...member("bob", 1, twice), ...retried]).sort(), ["no-duplicates", "request-once"]);
    });

    it("report a retry that became a second message for other members, and attempts answered with two messages", () => {
      // alice got the first attempt's message, bob the retry's: each once, so only the ids show it.
      const other: Delivery[] = [
        [105, "alice", "alice 1", "m0"],
        [205, "alice", "alice 2", "m2"],
      ];
      assert.deepEqual(checksFailed([start, ...member("alice", 0, once), ...member("bob", 1, other), ...retried]), ["request-once"]);
      const answeredTwice = retried.map(
        (e): HistoryEntry => (e.type === "call" && e.attempt === 1 && e.text === "alice 1" ? { ...e, outcome: "ok", messageId: "m0" } : e),
      );
      assert.deepEqual(checksFailed([start, ...member("alice", 0, once), ...member("bob", 1, once), ...answeredTwice]), ["request-once"]);
    });

    it("let a request id pass that a Redis restart forgot between its attempts", () => {
      const other: Delivery[] = [
        [105, "alice", "alice 1", "m0"],
        [205, "alice", "alice 2", "m2"],
      ];
      const restart: HistoryEntry = { type: "fault", kind: "redis-restart", target: "redis", start: 102, end: 103 };
      const result = checkHistory([start, ...member("alice", 0, once), ...member("bob", 1, other), ...retried, restart]);
      assert.deepEqual(result.violations, []);
      assert.equal(result.requestsExcused, 1);
    });
  });

  describe("history reads", () => {
    const reads: HistoryEntry = { type: "phase", name: "reads", t: 4000 };
    /** A ListMessages of a channel by alice, listing those texts newest first (from sends with no id). */
    const list = (target: string, newestFirst: [string, string][], at = 5000): HistoryEntry => ({
      type: "call",
      client: "alice",
      session: "alice/1",
      op: "list",
      target,
      start: at,
      end: at + 10,
      outcome: "ok",
      listed: newestFirst.map(([sender, text]) => ({ id: "", sender, channel: target.startsWith("g") ? target : sender === "alice" ? target : "alice", text })),
      complete: true,
    });
    const g0 = list("g0", [
      ["alice", "alice 2"],
      ["alice", "alice 1"],
    ]);

    it("find nothing wrong in a history that lists what its members received, in their order", () => {
      const result = checkHistory([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, reads, g0]);
      assert.deepEqual(result.violations, []);
      assert.equal(result.examined["history-sent"], 2);
      assert.equal(result.examined["history-order"], 4);
      assert.equal(result.examined["history-complete"], 2);
    });

    it("report a phantom in a history: a message never sent, one refused, one sent elsewhere", () => {
      const everyone = [start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, reads];
      const refused: HistoryEntry = {
        type: "call",
        client: "bob",
        session: "bob/1",
        op: "send",
        target: "g0",
        text: "bob 1",
        start: 300,
        end: 310,
        outcome: "error:NotFound",
      };
      const elsewhere: HistoryEntry = {
        type: "call",
        client: "bob",
        session: "bob/1",
        op: "send",
        target: "g1",
        text: "bob 2",
        start: 320,
        end: 330,
        outcome: "ok",
      };
      const listing = (text: string) =>
        list("g0", [
          ["bob", text],
          ["alice", "alice 2"],
          ["alice", "alice 1"],
        ]);
      assert.deepEqual(checksFailed([...everyone, listing("bob 9")]), ["history-sent"]);
      assert.deepEqual(checksFailed([...everyone, refused, listing("bob 1")]), ["history-sent"]);
      assert.deepEqual(checksFailed([...everyone, elsewhere, listing("bob 2")]), ["history-sent"]);
    });

    it("report a history whose order is not the order its members received, for a group and for one direction of a pair", () => {
      const reversed = list("g0", [
        ["alice", "alice 1"],
        ["alice", "alice 2"],
      ]);
      assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, reads, reversed]), ["history-order"]);
      // alice's direct messages to bob, received in the order sent; the pair's history lists them the other way round.
      const direct: HistoryEntry[] = [
        { type: "call", client: "alice", session: "alice/1", op: "send", target: "bob", text: "alice 3", start: 300, end: 310, outcome: "ok" },
        { type: "call", client: "alice", session: "alice/1", op: "send", target: "bob", text: "alice 4", start: 320, end: 330, outcome: "ok" },
        ...[
          [315, "alice 3"],
          [335, "alice 4"],
        ].map(
          ([t, text]): HistoryEntry => ({
            type: "event",
            client: "bob",
            session: "bob/1",
            stream: "bob/1.1",
            t: Number(t),
            kind: "message",
            channel: "bob",
            channelType: "user",
            sender: "alice",
            text: String(text),
          }),
        ),
      ];
      const everyone = [start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, ...direct, reads];
      const inOrder = list("bob", [
        ["alice", "alice 4"],
        ["alice", "alice 3"],
      ]);
      const outOfOrder = list("bob", [
        ["alice", "alice 3"],
        ["alice", "alice 4"],
      ]);
      assert.deepEqual(checksFailed([...everyone, inOrder]), []);
      assert.deepEqual(checksFailed([...everyone, outOfOrder]), ["history-order"]);
    });

    it("report a message a member received, or one acknowledged while it was a member, missing from the history it reads once healed", () => {
      const onlyLatest = list("g0", [["alice", "alice 2"]]);
      assert.deepEqual(checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, reads, onlyLatest]), ["history-complete"]);
      // alice did not receive "alice 1", but it was acknowledged while she was a member.
      assert.deepEqual(
        checksFailed([start, ...member("alice", 0, [[205, "alice", "alice 2"]]), ...member("bob", 1, both), ...sends, reads, onlyLatest]).sort(),
        ["history-complete", "no-silent-loss"],
      );
      // Not judged: a read under the faults (a first page, or the group may have been deleted and made again), or after a MemberLeft of the reader's own.
      assert.deepEqual(
        checksFailed([start, ...member("alice", 0, both), ...member("bob", 1, both), ...sends, reads, list("g0", [["alice", "alice 2"]], 3000)]),
        [],
      );
      const left: HistoryEntry = {
        type: "event",
        client: "alice",
        session: "alice/1",
        stream: "alice/1.1",
        t: 300,
        kind: "member-left",
        channel: "g0",
        username: "alice",
      };
      assert.deepEqual(checksFailed([start, ...member("alice", 0, both), left, ...member("bob", 1, both), ...sends, reads, onlyLatest]), []);
    });
  });
});
