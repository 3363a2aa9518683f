import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createRedisBackend, type RedisBackend, type RedisBackendOptions } from "../../server/cluster/redis-backend.js";
import { directoryKeys, nameKeys } from "../../server/cluster/redis-keys.js";
import { ChatError, chatErrors } from "../../server/core/chat-error.js";
import type { SessionEvent } from "../../server/core/session-event.js";
import { createLogger } from "../../server/ops/logger.js";
import { failsWith, takeUntil, until, untilEach } from "../helpers/backend-checks.js";
import { eventually } from "../helpers/eventually.js";
import { type RedisTopology, redisTopologies, startRedisTopology } from "../helpers/redis-topology.js";
import { describeEvents } from "../helpers/session-events.js";
import { smallLimits } from "../helpers/small-limits.js";

/** The words a member-left event carries on why. */
function details(events: readonly SessionEvent[]): string[] {
  return events.map((event) => (event.kind === "member-left" ? (event.detail ?? "") : ""));
}

/**
 * Membership, presence and resume across nodes: two backends (nodes A and
 * B) on one Redis or on a Redis Cluster, driven directly, the RPC layer aside.
 */
describe("cluster mode: membership, presence and resume across nodes", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 60_000 }, () => {
      let topology: RedisTopology;
      let open: RedisBackend[] = [];
      before(async () => {
        topology = await startRedisTopology(kind);
      });
      after(() => topology.kill());

      /** Two fresh nodes on an emptied Redis. */
      const twoNodes = async (options: Partial<RedisBackendOptions> = {}): Promise<[RedisBackend, RedisBackend]> => {
        await topology.flushall();
        const make = () =>
          createRedisBackend({
            ...topology.backendOptions,
            ...smallLimits,
            presenceIntervalMs: 0,
            leaseMs: 1000,
            sweepMs: 100,
            logger: createLogger("silent"),
            ...options,
          });
        const nodes: [RedisBackend, RedisBackend] = [make(), make()];
        open = nodes;
        try {
          await Promise.all(nodes.map((n) => n.start()));
        } catch (error) {
          // Nodes that cannot start must still be closed, or their clients retry for ever and the file never ends.
          await closeNodes();
          throw error;
        }
        return nodes;
      };
      const closeNodes = async () => {
        await Promise.all(open.map((n) => n.close()));
        open = [];
      };

      it("orders membership events with messages across nodes: a member sees what was sent after its join, none before", async () => {
        const [a, b] = await twoNodes();
        try {
          const alice = await a.connect("alice", { membership: true });
          const bob = await b.connect("bob", { membership: true });
          // Asked for nothing: messages only, as before membership events existed.
          const carol = await b.connect("carol");
          await b.createGroup("alice", "team");
          await a.joinGroup("carol", "team");
          await a.send("alice", "team", "before");
          await a.joinGroup("bob", "team");
          await b.send("alice", "team", "after");
          await a.send("bob", "team", "from bob");
          await b.leaveGroup("bob", "team");
          await a.send("alice", "team", "gone");
          assert.deepEqual(await until(alice, (l) => l.endsWith("gone")), [
            "member-joined team alice",
            "member-joined team carol",
            "message alice>team: before",
            "member-joined team bob",
            "message alice>team: after",
            "message bob>team: from bob",
            "member-left team bob left",
            "message alice>team: gone",
          ]);
          assert.deepEqual(await until(bob, (l) => l.startsWith("member-left")), [
            "member-joined team bob",
            "message alice>team: after",
            "message bob>team: from bob",
            "member-left team bob left",
          ]);
          assert.deepEqual(await until(carol, (l) => l.endsWith("gone")), [
            "message alice>team: before",
            "message alice>team: after",
            "message bob>team: from bob",
            "message alice>team: gone",
          ]);
          // Nothing more waits for bob: the next event is a marker sent now.
          await a.send("alice", "bob", "marker");
          assert.deepEqual(await until(bob, (l) => l.endsWith("marker")), ["message alice>bob: marker"]);
        } finally {
          await closeNodes();
        }
      });

      it("tells members on another node why one left: disconnected, cut off, its node gone, or its group deleted", async () => {
        const [a, b] = await twoNodes();
        try {
          const watcher = await b.connect("watcher", { membership: true });
          const sessions = await Promise.all(["carol", "dave", "erin", "squatter"].map((u) => a.connect(u, { membership: true })));
          await b.createGroup("watcher", "team");
          for (const u of ["carol", "dave"]) await a.joinGroup(u, "team");
          await until(watcher, (l) => l.includes("dave"));
          await a.disconnect(sessions[0]!, "network reset");
          await a.disconnect(sessions[1]!, chatErrors.fellBehind("dave", "too slow"));
          const left = await takeUntil(watcher, (l) => l.includes("dave"));
          assert.deepEqual(describeEvents(left), ["member-left team carol disconnected", "member-left team dave cut-off"]);
          assert.deepEqual(details(left), ["", chatErrors.fellBehind("dave", "too slow").message]);
          // A group squatting a name is deleted when its user reclaims it: each member hears only of its own leaving.
          await a.createGroup("squatter", "frank");
          await b.joinGroup("watcher", "frank");
          await b.joinGroup("erin", "frank");
          await until(watcher, (l) => l.includes("erin"));
          await b.connect("frank", { reclaim: true });
          assert.deepEqual(await until(watcher, (l) => l.includes("frank")), ["member-left frank watcher group-deleted"]);
          assert.deepEqual((await until(sessions[2]!, (l) => l.includes("left"))).slice(-1), ["member-left frank erin group-deleted"]);
          // A node that stops answering: the sweep releases its users, and the members hear of it.
          // Its keys span slots, so on a cluster they cannot be written in one MULTI: the
          // node is listed last, so that no sweep sees it before its user is in place.
          const admin = topology.admin();
          // Written as the scripts would have: the ghost's claim and listing, and its membership of team.
          await admin.hset(nameKeys.user("ghost"), "node", "dead-node", "epoch", "ghost-epoch", "seq", 0);
          await admin.sadd(nameKeys.groups("ghost"), "team");
          await admin.hset(nameKeys.members("team"), "ghost", 99);
          await admin.hset(directoryKeys.users, "ghost", "ghost-epoch");
          await admin.sadd(directoryKeys.nodeUsers("dead-node"), "ghost");
          await admin.set(directoryKeys.lease("dead-node"), "1", "PX", 200);
          await admin.sadd(directoryKeys.nodes, "dead-node");
          admin.disconnect();
          const swept = await takeUntil(watcher, (l) => l.includes("ghost"));
          assert.deepEqual(describeEvents(swept), ["member-left team ghost disconnected"]);
          assert.deepEqual(details(swept), ["its server stopped answering"]);
        } finally {
          await closeNodes();
        }
      });

      it("hands presence changes on one node to the watchers on another, coalesced", async () => {
        const [a, b] = await twoNodes({ presenceIntervalMs: 50 });
        try {
          assert.equal(a.presence, true);
          const watcher = await b.connect("watcher", { presence: true });
          const quiet = await b.connect("quiet");
          const newbie = await a.connect("newbie");
          await a.createGroup("newbie", "room");
          const seen = await until(watcher, (l) => l.includes("group:room"));
          assert.ok(seen.join().includes("user:newbie"), JSON.stringify(seen));
          await a.disconnect(newbie);
          const gone = await until(watcher, (l) => l.includes("-[") && l.includes("group:room"));
          assert.ok(gone.join().includes("user:newbie"), JSON.stringify(gone));
          assert.equal(quiet.pending, 0);
        } finally {
          await closeNodes();
        }
        const [off] = await twoNodes({ presenceIntervalMs: 0 });
        try {
          assert.equal(off.presence, false);
          assert.equal((await off.connect("watcher", { presence: true })).optIns.presence, false);
        } finally {
          await closeNodes();
        }
      });

      it("refuses a held name on every node, saying it is held, until the grace is over", async () => {
        const [a, b] = await twoNodes({ resumeGraceMs: 400 });
        try {
          const alice = await a.connect("alice");
          await failsWith(() => b.connect("alice"), "already-exists", "already online");
          await a.hold(alice, "dropped");
          await failsWith(() => b.connect("alice"), "already-exists", "held for its dropped session to resume (for up to 400 ms");
          await failsWith(() => a.connect("alice"), "already-exists", "held");
          // Resumed: online again, no longer held.
          await a.resume("alice", { token: alice.resumeToken ?? "", received: 0 });
          await failsWith(() => b.connect("alice"), "already-exists", "already online");
          // Dropped again, and not resumed: the grace ends it, and the name is free.
          await a.hold(alice, "dropped again");
          await eventually(() => alice.signal.aborted, "the grace never ended the session");
          assert.ok(alice.signal.reason instanceof ChatError && /was not resumed within 400 ms/.test(alice.signal.reason.message), String(alice.signal.reason));
          await eventually(async () => !(await b.isOnline("alice")), "alice is still online");
          await b.connect("alice");
        } finally {
          await closeNodes();
        }
      });

      it("resumes a session on its own node, replaying what was missed after `received`", async () => {
        const [a, b] = await twoNodes({ resumeGraceMs: 10_000 });
        try {
          const alice = await a.connect("alice", { membership: true });
          await b.connect("bob");
          await a.createGroup("alice", "team");
          await b.joinGroup("bob", "team");
          await b.send("bob", "team", "seen");
          const delivered = (await until(alice, (l) => l.endsWith("seen"))).length;
          await a.hold(alice, "dropped");
          await b.send("bob", "team", "missed 1");
          await b.send("bob", "alice", "missed 2");
          await eventually(() => alice.pending === 2, "the held session did not queue");
          await failsWith(() => a.resume("alice", { token: "not-the-token", received: 0 }), "not-found");
          await failsWith(() => a.resume("alice", { token: alice.resumeToken ?? "", received: delivered + 1 }), "invalid-input", "more than");
          const resumed = await a.resume("alice", { token: alice.resumeToken ?? "", received: delivered - 1, membership: true });
          assert.deepEqual([resumed.session === alice, resumed.resumed, resumed.lost], [true, true, 0]);
          const replayed = await untilEach(alice, ["missed 1", "missed 2"]);
          // Each channel in its order; across channels a Redis Cluster may deliver in either (docs/cluster.md).
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
          // A resume may say no more membership events: Redis stops addressing them to it.
          await a.hold(alice, "dropped again");
          await a.resume("alice", { token: alice.resumeToken ?? "", received: delivered + 3, membership: false });
          await b.connect("carol");
          await a.joinGroup("carol", "team");
          await b.send("carol", "team", "after the opt-out");
          assert.deepEqual(await until(alice, (l) => l.endsWith("opt-out")), ["message carol>team: after the opt-out"]);
        } finally {
          await closeNodes();
        }
      });

      it("takes a session over on another node with its token: a fresh session, the old one ended, nothing twice", async () => {
        const [a, b] = await twoNodes({ resumeGraceMs: 10_000, presenceIntervalMs: 20 });
        try {
          const watcher = await a.connect("watcher", { presence: true });
          const alice = await a.connect("alice", { membership: true });
          const bob = await b.connect("bob", { membership: true });
          await a.createGroup("alice", "team");
          await b.joinGroup("bob", "team");
          await a.send("bob", "alice", "before");
          await until(alice, (l) => l.endsWith("before"));
          await until(bob, (l) => l.includes("bob"));
          // The watcher saw alice come online, so that a flicker could not coalesce away.
          await until(watcher, (l) => l.includes("user:alice"));
          const oldStream = alice.attachStream();
          // A wrong token takes nothing, anywhere.
          await failsWith(() => b.resume("alice", { token: "not-the-token", received: 0 }), "not-found");
          assert.equal(alice.signal.aborted, false);
          // The stream on A has not noticed its drop (no hold): the token takes the session all the same.
          const taken = await b.resume("alice", { token: alice.resumeToken ?? "", received: 1, membership: true });
          assert.deepEqual([taken.resumed, taken.lost, taken.session === alice, taken.stream.aborted], [false, 0, false, false]);
          assert.notEqual(taken.session.resumeToken, alice.resumeToken);
          await eventually(() => alice.signal.aborted, "the old session on A never ended");
          assert.ok(alice.signal.reason instanceof ChatError && alice.signal.reason.kind === "aborted", String(alice.signal.reason));
          assert.equal(oldStream.aborted, true);
          // Its groups are gone, and their members heard it leave.
          assert.deepEqual(await until(bob, (l) => l.includes("alice")), ["member-left team alice disconnected"]);
          assert.deepEqual(await b.listMembers("bob", "team"), ["bob"]);
          await failsWith(() => a.send("alice", "team", "x"), "not-allowed");
          // The name is the fresh session's, online once, on B.
          assert.deepEqual(
            (await a.listChannels()).map((c) => c.name),
            ["alice", "bob", "team", "watcher"],
          );
          await failsWith(() => a.connect("alice"), "already-exists", "already online");
          // alice never went offline for the watchers.
          await b.createGroup("bob", "later");
          const presence = await until(watcher, (l) => l.includes("group:later"));
          assert.ok(!presence.some((l) => /-\[[^\]]*user:alice/.test(l)), JSON.stringify(presence));
          // The old token resumes nothing any more, on either node.
          for (const node of [a, b]) await failsWith(() => node.resume("alice", { token: alice.resumeToken ?? "", received: 0 }), "not-found");
          // A message sent after the takeover arrives once, at the fresh session.
          await a.send("bob", "alice", "after");
          await b.send("bob", "alice", "marker");
          assert.deepEqual(await until(taken.session, (l) => l.endsWith("marker")), ["message bob>alice: after", "message bob>alice: marker"]);
          assert.equal(alice.pending, 0);
          // The fresh session's token resumes it on its new node.
          await b.hold(taken.session, "dropped");
          const again = await b.resume("alice", { token: taken.session.resumeToken ?? "", received: 2 });
          assert.deepEqual([again.resumed, again.session === taken.session], [true, true]);
        } finally {
          await closeNodes();
        }
      });

      it("lists a group's members to its members on any node, a page at a time", async () => {
        const [a, b] = await twoNodes();
        try {
          for (const u of ["carol", "alice"]) await a.connect(u);
          for (const u of ["bob", "dave"]) await b.connect(u);
          await a.createGroup("carol", "team");
          for (const u of ["alice", "bob"]) await b.joinGroup(u, "team");
          assert.deepEqual(await b.listMembers("carol", "team"), ["alice", "bob", "carol"]);
          assert.deepEqual(await a.listMembers("bob", "team", { after: "alice", limit: 1 }), ["bob"]);
          await failsWith(() => b.listMembers("dave", "team"), "not-allowed", "must join");
          await failsWith(() => a.listMembers("dave", "nope"), "not-found", '"nope"');
          await failsWith(() => a.listMembers("ghost", "team"), "not-signed-in");
          await failsWith(() => a.listMembers("dave", "bad name"), "invalid-input");
        } finally {
          await closeNodes();
        }
      });
    });
  }
});
