import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatBackend } from "../../server/core/chat-backend.js";
import type { ChatError } from "../../server/core/chat-error.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import type { HistoryBounds } from "../../server/core/message-history.js";
import type { HistoryLimits } from "../../server/core/resume-session.js";
import type { ChatEvent } from "../../server/core/session-event.js";
import { failsWith } from "../helpers/backend-checks.js";
import { eventually } from "../helpers/eventually.js";
import { messages } from "../helpers/session-events.js";
import { smallLimits } from "../helpers/small-limits.js";

/** The limits every backend takes. */
export interface BackendLimits {
  queueLimit: number;
  queueLimitBytes: number;
  maxQueuedBytes: number;
  maxGroupsPerUser: number;
  maxGroups: number;
  resumeGraceMs?: number;
  resumeHistory?: HistoryLimits;
  presenceIntervalMs?: number;
  history?: HistoryBounds;
  keepDirectHistory?: boolean;
}

/** Makes a fresh, empty backend for one test, and disposes of it after. */
export type BackendFactory = (options: BackendLimits) => Promise<{
  backend: ChatBackend;
  close(): Promise<void>;
}>;

/** Waits until a session holds n events (deliveries may cross a network), then takes them. */
async function received(session: ChatSession, n: number): Promise<ChatEvent[]> {
  await eventually(
    () => session.pending >= n,
    () => `${session.username} holds ${session.pending} of ${n} events`,
  );
  return messages(session.take(1e9, 1e12));
}

/**
 * Makes test bodies that get a fresh backend of the factory, with small
 * limits over which a test's own options win, and dispose of it after.
 */
export function backendRunner(factory: BackendFactory, defaults: Partial<BackendLimits> = {}) {
  return (options: Partial<BackendLimits>, body: (b: ChatBackend) => Promise<void>) => async () => {
    const { backend, close } = await factory({
      ...smallLimits,
      ...defaults,
      ...options,
    });
    try {
      await body(backend);
    } finally {
      await close();
    }
  };
}

/**
 * The behaviour every ChatBackend owes the RPC layer, written once and run
 * against each implementation: the in-memory backend and the Redis cluster.
 */
export function backendContract(name: string, factory: BackendFactory): void {
  describe(`ChatBackend contract: ${name}`, () => {
    const withBackend = backendRunner(factory);

    it(
      "gives a name back to its user when asked to reclaim it from a group, whose members leave it",
      withBackend({}, async (b) => {
        const squatter = await b.connect("squatter");
        const friend = await b.connect("friend");
        await b.createGroup("squatter", "victim");
        await b.joinGroup("friend", "victim");
        await failsWith(() => b.connect("victim"), "already-exists", "name of a group");
        const victim = await b.connect("victim", { reclaim: true });
        assert.deepEqual(
          (await b.listChannels()).map((c) => `${c.type}:${c.name}`),
          ["user:friend", "user:squatter", "user:victim"],
        );
        // Sends to the name reach the user now; the former members are in no group.
        await b.send("friend", "victim", "to the user");
        assert.deepEqual(
          (await received(victim, 1)).map((e) => e.text),
          ["to the user"],
        );
        await failsWith(() => b.leaveGroup("squatter", "victim"), "not-found");
        for (const s of [squatter, friend, victim]) await b.disconnect(s);
      }),
    );

    it(
      "holds each name once, and frees it on disconnect",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        await failsWith(() => b.connect("alice"), "already-exists", '"alice" is already online');
        await failsWith(() => b.connect(""), "invalid-input", "empty");
        await failsWith(() => b.connect("a b"), "invalid-input", '"a b"');
        await b.createGroup("alice", "room");
        await failsWith(() => b.connect("room"), "already-exists", "name of a group");
        assert.equal(await b.isOnline("alice"), true);
        await b.disconnect(alice);
        assert.equal(alice.signal.aborted, true);
        assert.equal(await b.isOnline("alice"), false);
        // Her group went with her, and both names are free.
        assert.deepEqual(await b.listChannels(), []);
        await b.connect("alice");
        await b.connect("room");
      }),
    );

    it(
      "creates, joins and leaves groups by the rules",
      withBackend({}, async (b) => {
        await b.connect("alice");
        await b.connect("bob");
        await b.createGroup("alice", "room");
        await failsWith(() => b.createGroup("bob", "room"), "already-exists", '"room" already exists');
        await failsWith(() => b.createGroup("alice", "bob"), "already-exists", "online user");
        await failsWith(() => b.createGroup("alice", "no/slash"), "invalid-input");
        await failsWith(() => b.createGroup("carol", "other"), "not-signed-in", '"carol"');
        await failsWith(() => b.joinGroup("bob", "nope"), "not-found", '"nope"');
        await b.joinGroup("bob", "room");
        await failsWith(() => b.joinGroup("bob", "room"), "already-exists", "already a member");
        await failsWith(() => b.leaveGroup("bob", "nope"), "not-found");
        await b.leaveGroup("alice", "room");
        await failsWith(() => b.leaveGroup("alice", "room"), "not-a-member");
        assert.deepEqual(await b.listChannels(), [
          { name: "alice", type: "user" },
          { name: "bob", type: "user" },
          { name: "room", type: "group" },
        ]);
        await b.leaveGroup("bob", "room");
        assert.deepEqual(await b.stats(), { users: 2, groups: 0 });
      }),
    );

    it(
      "delivers direct and group messages, each once",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        const carol = await b.connect("carol");
        const direct = await b.send("alice", "bob", "hello bob");
        assert.deepEqual([direct.sender, direct.channel, direct.text, direct.textBytes], ["alice", { name: "bob", type: "user" }, "hello bob", 9]);
        const [got] = await received(bob, 1);
        // The holders count is the queues' bookkeeping; the message is the rest.
        const message = (e: ChatEvent | undefined) => ({ ...e, sentAt: e?.sentAt.getTime(), holders: undefined });
        assert.deepEqual(message(got), message(direct));
        await b.send("alice", "alice", "to myself");
        assert.deepEqual(
          (await received(alice, 1)).map((e) => e.text),
          ["to myself"],
        );
        await b.createGroup("alice", "room");
        await b.joinGroup("bob", "room");
        await failsWith(() => b.send("carol", "room", "let me in"), "not-allowed", "must join");
        await failsWith(() => b.send("alice", "nobody", "x"), "not-found", '"nobody"');
        await failsWith(() => b.send("alice", "bob", ""), "invalid-input", "empty");
        await failsWith(() => b.send("alice", "bob", "€".repeat(1366)), "invalid-input", "4098 bytes");
        const group = await b.send("bob", "room", "hi room");
        for (const s of [alice, bob])
          assert.deepEqual(
            (await received(s, 1)).map((e) => [e.id, e.channel.type]),
            [[group.id, "group"]],
          );
        // A marker sent after it: each session's next event must be the
        // marker, so nothing else (a copy, a message not meant for it) came first.
        for (const s of [alice, bob, carol]) await b.send("alice", s.username, `marker for ${s.username}`);
        for (const s of [alice, bob, carol])
          assert.deepEqual(
            (await received(s, 1)).map((e) => e.text),
            [`marker for ${s.username}`],
          );
      }),
    );

    it(
      "queues a group's messages in one order for every member",
      withBackend({}, async (b) => {
        const members = await Promise.all(["m1", "m2", "m3"].map((u) => b.connect(u)));
        await b.createGroup("m1", "g");
        await b.joinGroup("m2", "g");
        await b.joinGroup("m3", "g");
        await Promise.all(
          members.map(async (m) => {
            for (let i = 0; i < 20; i++) await b.send(m.username, "g", `${m.username}:${i}`);
          }),
        );
        const orders = await Promise.all(members.map(async (m) => (await received(m, 60)).map((e) => e.text)));
        for (const order of orders) assert.deepEqual(order, orders[0]);
      }),
    );

    it(
      "cuts off a session whose queue overflows, and frees what it held",
      withBackend({ queueLimit: 3 }, async (b) => {
        const slow = await b.connect("slow");
        await b.connect("fast");
        await b.createGroup("slow", "slow-room");
        for (let i = 0; i < 4; i++) await b.send("fast", "slow", `m${i}`);
        await eventually(() => slow.signal.aborted, "slow was not cut off");
        assert.equal((slow.signal.reason as ChatError).kind, "exhausted");
        await eventually(async () => !(await b.isOnline("slow")), "slow is still online");
        assert.deepEqual(await b.listChannels(), [{ name: "fast", type: "user" }]);
      }),
    );

    it(
      "limits how many groups one user is in",
      withBackend({ maxGroupsPerUser: 2 }, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "g1");
        await b.createGroup("alice", "g2");
        await failsWith(() => b.createGroup("alice", "g3"), "exhausted", "2 groups");
      }),
    );

    it(
      "limits how many groups exist at once",
      withBackend({ maxGroups: 3 }, async (b) => {
        for (const u of ["u1", "u2"]) await b.connect(u);
        await b.createGroup("u1", "g1");
        await b.createGroup("u1", "g2");
        await b.createGroup("u2", "g3");
        await failsWith(() => b.createGroup("u2", "g4"), "exhausted", "3 groups, the most it allows");
        await b.leaveGroup("u1", "g1");
        await b.createGroup("u2", "g4");
      }),
    );

    it(
      "lists channels a page at a time, in name order",
      withBackend({}, async (b) => {
        for (const u of ["carol", "alice", "bob"]) await b.connect(u);
        for (const g of ["beta", "alpha", "gamma"]) await b.createGroup("alice", g);
        const names = (channels: { name: string }[]) => channels.map((c) => c.name);
        assert.deepEqual(names(await b.listChannels()), ["alice", "alpha", "beta", "bob", "carol", "gamma"]);
        assert.deepEqual(names(await b.listChannels({ limit: 4 })), ["alice", "alpha", "beta", "bob"]);
        assert.deepEqual(names(await b.listChannels({ after: "bob", limit: 4 })), ["carol", "gamma"]);
        // After a name that is gone, the page starts where it would have been.
        assert.deepEqual(names(await b.listChannels({ after: "b", limit: 1 })), ["beta"]);
        assert.deepEqual(await b.listChannels({ after: "gamma", limit: 4 }), []);
      }),
    );

    it(
      "bounds each queue in bytes as well as in events",
      withBackend({ queueLimit: 1000, queueLimitBytes: 15_000 }, async (b) => {
        const reader = await b.connect("reader");
        await b.connect("writer");
        // 2,000 bytes of text weigh 4,700 (see queuedEventBytes): the fourth is too many.
        for (let i = 0; i < 4; i++) await b.send("writer", "reader", "t".repeat(2000));
        await eventually(() => reader.signal.aborted, "reader was not cut off");
        assert.match(String((reader.signal.reason as Error).message), /18800 bytes were waiting to be read, more than the 15000 allowed/);
        assert.equal(await b.isOnline("reader"), false);
      }),
    );

    it(
      "cuts off the largest queues when all of them together pass the limit",
      withBackend({ queueLimitBytes: 100_000, maxQueuedBytes: 60_000 }, async (b) => {
        const big = await b.connect("big");
        const small = await b.connect("small");
        await b.connect("writer");
        for (let i = 0; i < 10; i++) await b.send("writer", "big", "t".repeat(2000));
        for (let i = 0; i < 5; i++) await b.send("writer", "small", "t".repeat(2000));
        // 47,000 + 14,100 bytes: over 60,000, and big holds the most.
        await eventually(() => big.signal.aborted, "big was not cut off");
        assert.match(String((big.signal.reason as Error).message), /queues reached their limit of 60000 bytes, and this stream held the most \(47000 bytes/);
        assert.equal(small.signal.aborted, false);
        await eventually(
          () => small.pending >= 5,
          () => `small holds ${small.pending} of 5 events`,
        );
        assert.equal(small.pending, 5);
      }),
    );

    it(
      "counts a group message once in the total, and cuts off as many as it takes to get under it",
      withBackend({ queueLimitBytes: 100_000, maxQueuedBytes: 20_000 }, async (b) => {
        const a = await b.connect("a");
        const c = await b.connect("c");
        await b.connect("s");
        await b.createGroup("s", "room");
        await b.joinGroup("a", "room");
        await b.joinGroup("c", "room");
        // Three queues hold each message, which counts once: 4 × 4,700 is under 20,000.
        for (let i = 0; i < 4; i++) await b.send("s", "room", "t".repeat(2000));
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(a.signal.aborted || c.signal.aborted, false, "cut off under the limit");
        // The fifth passes it; cutting one member frees nothing the others still hold.
        await b.send("s", "room", "t".repeat(2000));
        await eventually(
          () => a.signal.aborted && c.signal.aborted,
          () => `not both cut off: a ${a.signal.aborted}, c ${c.signal.aborted}`,
        );
      }),
    );
  });
}
