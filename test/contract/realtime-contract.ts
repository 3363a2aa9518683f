import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatError } from "../../server/core/chat-error.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import type { SessionEvent } from "../../server/core/session-event.js";
import { failsWith, takeUntil, until, untilEach } from "../helpers/backend-checks.js";
import { eventually } from "../helpers/eventually.js";
import { describeEvents } from "../helpers/session-events.js";
import { type BackendFactory, backendRunner } from "./backend-contract.js";

/** Takes what a session holds and says it was written, as a stream does. */
function deliverAll(session: ChatSession): SessionEvent[] {
  const events = session.take(1e9, 1e12);
  session.written();
  return events;
}

/**
 * Membership events, presence events and resuming, as every ChatBackend
 * owes them to the RPC layer, run against each implementation.
 */
export function realtimeContract(name: string, factory: BackendFactory): void {
  describe(`ChatBackend real-time contract: ${name}`, () => {
    // Presence off unless a test asks: its events would mix with the others'.
    const withBackend = backendRunner(factory, { presenceIntervalMs: 0 });

    it(
      "orders membership events with the group's messages: a member sees what was sent after its join, none before",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice", { membership: true });
        const bob = await b.connect("bob", { membership: true });
        await b.createGroup("alice", "team");
        await b.send("alice", "team", "before");
        await b.joinGroup("bob", "team");
        await b.send("alice", "team", "after");
        await b.leaveGroup("bob", "team");
        await b.send("alice", "team", "gone");
        assert.deepEqual(await until(alice, (l) => l.endsWith("gone")), [
          "member-joined team alice",
          "message alice>team: before",
          "member-joined team bob",
          "message alice>team: after",
          "member-left team bob left",
          "message alice>team: gone",
        ]);
        assert.deepEqual(await until(bob, (l) => l.startsWith("member-left")), [
          "member-joined team bob",
          "message alice>team: after",
          "member-left team bob left",
        ]);
      }),
    );

    it(
      "tells the members why one left: disconnected, or cut off for falling behind",
      withBackend({ queueLimit: 3 }, async (b) => {
        // alice reads as events come; dave reads nothing.
        const alice = await b.connect("alice", { membership: true });
        const carol = await b.connect("carol");
        const dave = await b.connect("dave");
        await b.createGroup("alice", "team");
        await b.joinGroup("carol", "team");
        await b.joinGroup("dave", "team");
        await until(alice, (l) => l === "member-joined team dave");
        await b.disconnect(carol, "bye");
        assert.deepEqual(await until(alice, (l) => l.includes("carol")), ["member-left team carol disconnected"]);
        // dave reads nothing: the fourth message cuts it off.
        const left: string[] = [];
        for (let i = 0; i < 4; i++) {
          await b.send("alice", "team", `m${i}`);
          left.push(...(await until(alice, (l) => l.endsWith(`m${i}`))));
        }
        if (!left.some((l) => l.includes("dave"))) left.push(...(await until(alice, (l) => l.includes("dave"))));
        assert.deepEqual(left.slice(-2), ["message alice>team: m3", "member-left team dave cut-off"]);
        assert.equal(dave.signal.aborted, true);
        // A client that asked for nothing gets messages only, as before membership events existed.
        assert.equal(dave.optIns.membership, false);
      }),
    );

    it(
      "costs O(members) per change: a group of 1,000 members each see their own join first, then every later one",
      withBackend({ queueLimit: 5000, maxGroupsPerUser: 10 }, async (b) => {
        const size = 1000;
        const members: ChatSession[] = [];
        for (let i = 0; i < size; i++) members.push(await b.connect(`u${i}`, { membership: true }));
        await b.createGroup("u0", "big");
        for (let i = 1; i < size; i++) await b.joinGroup(`u${i}`, "big");
        await b.send(`u${size - 1}`, "big", "all here");
        for (const i of [0, 1, 500, size - 1]) {
          const seen = await until(members[i]!, (l) => l.endsWith("all here"));
          assert.equal(seen[0], `member-joined big u${i}`);
          assert.equal(seen.length, size - i + 1, `u${i} sees its join, the ${size - i - 1} after it, and the message`);
          assert.equal(seen.at(-2), `member-joined big u${size - 1}`);
        }
        assert.deepEqual(await b.listMembers("u7", "big", { limit: 3 }), ["u0", "u1", "u10"]);
        assert.deepEqual(await b.listMembers("u7", "big", { after: "u998", limit: 3 }), ["u999"]);
      }),
    );

    it(
      "lists members only for members, with the errors of the contract",
      withBackend({}, async (b) => {
        await b.connect("alice");
        await b.connect("bob");
        await b.createGroup("alice", "team");
        assert.deepEqual(await b.listMembers("alice", "team"), ["alice"]);
        await failsWith(() => b.listMembers("bob", "team"), "not-allowed", "must join");
        await failsWith(() => b.listMembers("bob", "nope"), "not-found", '"nope"');
        await failsWith(() => b.listMembers("ghost", "team"), "not-signed-in");
      }),
    );

    it(
      "gives each member of a group deleted by a reclaimed name only its own leave",
      withBackend({}, async (b) => {
        const friend = await b.connect("friend", { membership: true });
        await b.connect("squatter");
        await b.createGroup("squatter", "victim");
        await b.joinGroup("friend", "victim");
        // Across nodes, the join event may arrive after joinGroup returns.
        await until(friend, (l) => l === "member-joined victim friend");
        await b.connect("victim", { reclaim: true });
        assert.deepEqual(await until(friend, (l) => l.startsWith("member-left")), ["member-left victim friend group-deleted"]);
      }),
    );

    it(
      "publishes presence coalesced: a channel that changed within one interval is sent once, in its final state",
      withBackend({ presenceIntervalMs: 300 }, async (b) => {
        assert.equal(b.presence, true);
        const watcher = await b.connect("watcher", { presence: true });
        const quiet = await b.connect("quiet");
        assert.equal(watcher.optIns.presence, true);
        assert.equal(quiet.optIns.presence, false);
        const flicker = await b.connect("flicker");
        await b.disconnect(flicker);
        await b.connect("steady");
        await b.createGroup("steady", "room");
        const seen = await until(watcher, (l) => l.includes("group:room"));
        // Coalesced to its final state: removed, never added.
        assert.ok(!seen.some((l) => /\+\[[^\]]*user:flicker/.test(l)), JSON.stringify(seen));
        assert.ok(seen.join().includes("user:steady"), JSON.stringify(seen));
        await b.disconnect(quiet);
        await b.leaveGroup("steady", "room");
        const gone = await until(watcher, (l) => l.includes("group:room"));
        assert.ok(
          gone.some((l) => l.includes("-[") && l.includes("user:quiet") && l.includes("group:room")),
          JSON.stringify(gone),
        );
        assert.equal(quiet.pending, 0);
      }),
    );

    it(
      "grants no presence when the server has it switched off",
      withBackend({ presenceIntervalMs: 0 }, async (b) => {
        assert.equal(b.presence, false);
        const watcher = await b.connect("watcher", { presence: true });
        assert.equal(watcher.optIns.presence, false);
      }),
    );

    it(
      "without a grace, holding a dropped session ends it at once, and sessions have no resume token",
      withBackend({ resumeGraceMs: 0 }, async (b) => {
        const alice = await b.connect("alice");
        assert.equal(alice.resumeToken, undefined);
        await b.hold(alice, "dropped");
        assert.equal(alice.signal.aborted, true);
        assert.equal(await b.isOnline("alice"), false);
      }),
    );

    it(
      "resumes a dropped session within the grace: same groups, every missed event in order, the name held meanwhile",
      withBackend({ resumeGraceMs: 10_000 }, async (b) => {
        const alice = await b.connect("alice", { membership: true });
        await b.connect("bob");
        await b.createGroup("alice", "team");
        await b.joinGroup("bob", "team");
        await b.send("bob", "team", "seen");
        const delivered = (await until(alice, (l) => l.endsWith("seen"))).length;
        // The client received all but the last event before its stream dropped.
        await b.hold(alice, "dropped");
        await b.send("bob", "team", "missed 1");
        await b.send("bob", "alice", "missed 2");
        await failsWith(() => b.connect("alice"), "already-exists", "held");
        await failsWith(() => b.resume("alice", { token: "not-the-token", received: 0 }), "not-found");
        const token = alice.resumeToken;
        assert.ok(token !== undefined && token.length >= 32);
        await failsWith(() => b.resume("alice", { token, received: delivered + 1 }), "invalid-input", "more than");
        const resumed = await b.resume("alice", { token, received: delivered - 1, membership: true });
        assert.equal(resumed.session, alice);
        assert.equal(resumed.resumed, true);
        assert.equal(resumed.lost, 0);
        const replayed = await untilEach(alice, ["missed 1", "missed 2"]);
        // Each channel in its order; across channels (the group, the direct
        // messages) a Redis Cluster may deliver in either (docs/cluster.md).
        assert.deepEqual(
          replayed.filter((l) => l.includes(">team")),
          ["message bob>team: seen", "message bob>team: missed 1"],
        );
        assert.deepEqual(
          replayed.filter((l) => !l.includes(">team")),
          ["message bob>alice: missed 2"],
        );
        await b.send("bob", "team", "live");
        assert.deepEqual(await until(alice, (l) => l.endsWith("live")), ["message bob>team: live"]);
      }),
    );

    it(
      "ends a held session after the grace, as a disconnect, and its token resumes nothing",
      withBackend({ resumeGraceMs: 150 }, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob", { membership: true });
        await b.createGroup("bob", "team");
        await b.joinGroup("alice", "team");
        await until(bob, (l) => l === "member-joined team alice");
        await b.hold(alice, "dropped");
        assert.equal(await b.isOnline("alice"), true);
        assert.deepEqual(await until(bob, (l) => l.includes("alice")), ["member-left team alice disconnected"]);
        assert.equal(alice.signal.aborted, true);
        // On Redis the name is released in steps, its groups first (see docs/cluster.md#design): the leave may be seen a moment before.
        await eventually(async () => !(await b.isOnline("alice")), "alice is still online after the grace");
        await failsWith(() => b.resume("alice", { token: alice.resumeToken ?? "", received: 0 }), "not-found");
      }),
    );

    it(
      "ends a held session whose queue overflows during the grace, as today",
      withBackend({ resumeGraceMs: 10_000, queueLimit: 3 }, async (b) => {
        const alice = await b.connect("alice");
        await b.connect("bob");
        await b.hold(alice, "dropped");
        for (let i = 0; i < 4; i++) await b.send("bob", "alice", `m${i}`);
        await eventually(() => alice.signal.aborted, "the held session was not cut off");
        assert.ok(alice.signal.reason instanceof ChatError && alice.signal.reason.kind === "exhausted", String(alice.signal.reason));
        assert.equal(await b.isOnline("alice"), false);
      }),
    );

    it(
      "says how many missed events fell out of the history, and replays the rest",
      withBackend({ resumeGraceMs: 10_000, resumeHistory: { events: 2, bytes: 1 << 20 } }, async (b) => {
        const alice = await b.connect("alice");
        await b.connect("bob");
        for (let i = 0; i < 5; i++) await b.send("bob", "alice", `m${i}`);
        await until(alice, (l) => l.endsWith("m4"));
        await b.hold(alice, "dropped");
        const resumed = await b.resume("alice", { token: alice.resumeToken ?? "", received: 0 });
        assert.equal(resumed.lost, 3);
        assert.deepEqual(describeEvents(deliverAll(alice)), ["message bob>alice: m3", "message bob>alice: m4"]);
        // The client counts the lost events as received: its place is 0 + 3 lost + 2 replayed.
        await b.hold(alice, "dropped again");
        await b.send("bob", "alice", "m5");
        const again = await b.resume("alice", { token: alice.resumeToken ?? "", received: 5 });
        assert.equal(again.lost, 0);
        assert.deepEqual(describeEvents(await takeUntil(alice, (l) => l.endsWith("m5"))), ["message bob>alice: m5"]);
      }),
    );

    it(
      "lets a resume take a session from a stream that has not noticed its drop yet",
      withBackend({ resumeGraceMs: 10_000 }, async (b) => {
        const alice = await b.connect("alice");
        const first = alice.attachStream();
        // A count the session never reached is refused and changes nothing: the stream keeps its session.
        await failsWith(() => b.resume("alice", { token: alice.resumeToken ?? "", received: 5 }), "invalid-input");
        assert.equal(first.aborted, false);
        const resumed = await b.resume("alice", { token: alice.resumeToken ?? "", received: 0 });
        assert.equal(first.aborted, true);
        assert.ok(first.reason instanceof ChatError && first.reason.kind === "aborted", String(first.reason));
        assert.equal(resumed.stream.aborted, false);
        assert.equal(alice.signal.aborted, false);
      }),
    );
  });
}
