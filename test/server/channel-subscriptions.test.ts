import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createChannelSubscriptions, type Subscriber } from "../../server/cluster/channel-subscriptions.js";
import { messageFields, parsePublication } from "../../server/cluster/delivery.js";
import { directoryKeys, nameKeys, ownerOf, repliesChannel } from "../../server/cluster/redis-keys.js";

/** A subscriber that records its calls and answers when told. */
function recordingSubscriber() {
  const calls: string[] = [];
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const subscriber: Subscriber = {
    subscribe: (channels) =>
      new Promise((resolve, reject) => {
        calls.push(`+${channels.join()}`);
        pending.push({ resolve, reject });
      }),
    unsubscribe: async (channels) => {
      calls.push(`-${channels.join()}`);
    },
  };
  // Lets queued calls start, answers the oldest subscribe, and lets what follows run.
  const settle = async (fail = false) => {
    await new Promise((resolve) => setImmediate(resolve));
    const next = pending.shift();
    if (fail) next?.reject(new Error("no"));
    else next?.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { subscriber, calls, settle };
}

describe("counted shard-channel subscriptions", () => {
  it("drops an unsubscribe chained before a reset, which would undo the holds taken since (found by the chaos checker)", async () => {
    const calls: string[] = [];
    const answers: { resolve: () => void; reject: (error: Error) => void }[] = [];
    const subs = createChannelSubscriptions({
      subscribe: (channels) =>
        new Promise((resolve, reject) => {
          calls.push(`+${channels.join()}`);
          answers.push({ resolve, reject });
        }),
      unsubscribe: async (channels) => {
        calls.push(`-${channels.join()}`);
      },
    });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    // A join's subscribe hangs as Redis dies; losing Redis ends the session, whose hold was the last.
    const hung = subs.acquire("room").catch((error: unknown) => error);
    await turn();
    assert.equal(subs.release("room"), true);
    subs.reset();
    // Members join again on the new connection, and are subscribed.
    const again = subs.acquire("room");
    await turn();
    answers[1]?.resolve();
    await again;
    calls.length = 0;
    // The hung subscribe fails at last.
    answers[0]?.reject(new Error("timed out"));
    assert.ok((await hung) instanceof Error);
    await turn();
    await turn();
    assert.equal(subs.has("room"), true);
    assert.deepEqual(calls, [], "nothing may unsubscribe the room while it is held");
  });

  it("subscribes once for many holders, and unsubscribes when the last lets go", async () => {
    const { subscriber, calls, settle } = recordingSubscriber();
    const subs = createChannelSubscriptions(subscriber);
    const first = subs.acquire("room");
    const second = subs.acquire("room");
    await settle();
    await Promise.all([first, second]);
    assert.deepEqual(calls, ["+room"]);
    assert.equal(subs.release("room"), false);
    assert.equal(subs.release("room"), true);
    await settle();
    assert.deepEqual(calls, ["+room", "-room"]);
    assert.equal(subs.has("room"), false);
  });

  it("subscribes again after an unsubscribe under way, in that order", async () => {
    const { subscriber, calls, settle } = recordingSubscriber();
    const subs = createChannelSubscriptions(subscriber);
    const first = subs.acquire("room");
    await settle();
    await first;
    subs.release("room");
    const again = subs.acquire("room");
    await settle();
    await again;
    assert.deepEqual(calls, ["+room", "-room", "+room"]);
    assert.equal(subs.has("room"), true);
  });

  it("leaves no hold when the subscribe fails, and forgets every hold on reset", async () => {
    const { subscriber, calls, settle } = recordingSubscriber();
    const subs = createChannelSubscriptions(subscriber);
    const failing = subs.acquire("room");
    await settle(true);
    await assert.rejects(failing);
    assert.equal(subs.has("room"), false);
    const held = subs.acquire("inbox");
    await settle();
    await held;
    subs.reset();
    assert.equal(subs.has("inbox"), false);
    assert.equal(subs.release("inbox"), false);
    assert.deepEqual(calls.slice(-1), ["-inbox"]);
  });
});

describe("what the scripts publish, read back", () => {
  it("reads each kind, free text last with its bars", () => {
    assert.deepEqual(parsePublication(`m7|ep|${messageFields("id-1", "bob", 1700, "a|b")}`), {
      kind: "message",
      seq: 7,
      epoch: "ep",
      id: "id-1",
      sender: "bob",
      sentAt: 1700,
      text: "a|b",
    });
    assert.deepEqual(parsePublication("j3|ep|alice|ue"), { kind: "joined", seq: 3, epoch: "ep", user: "alice", userEpoch: "ue" });
    assert.deepEqual(parsePublication("l4|ep|alice|cut-off|too slow|really"), {
      kind: "left",
      seq: 4,
      epoch: "ep",
      user: "alice",
      reason: "cut-off",
      detail: "too slow|really",
    });
    assert.deepEqual(parsePublication("d5|ep|"), { kind: "deleted", seq: 5, epoch: "ep" });
    assert.deepEqual(parsePublication("e0|ep|hash"), { kind: "end", epoch: "ep", tokenHash: "hash" });
    assert.deepEqual(parsePublication("n0|ep|node-1|req-1|team"), { kind: "notice", epoch: "ep", replyTo: "node-1", request: "req-1", group: "team" });
  });

  it("answers undefined for anything else", () => {
    for (const junk of ["", "not a publication", "m", "m1|x", "j1|ep", "l1|ep|alice|no-such-reason|", "x1|ep|y"]) {
      assert.equal(parsePublication(junk), undefined, junk);
    }
  });

  it("tells the owner of each channel from its name", () => {
    assert.deepEqual(ownerOf(nameKeys.inbox("alice")), { kind: "inbox", name: "alice" });
    assert.deepEqual(ownerOf(nameKeys.room("team.1")), { kind: "room", name: "team.1" });
    assert.deepEqual(ownerOf(directoryKeys.presence), { kind: "presence" });
    assert.deepEqual(ownerOf(repliesChannel("node-1")), { kind: "replies" });
    assert.equal(ownerOf("chat:{alice}:user"), undefined);
    assert.equal(ownerOf("other"), undefined);
  });
});
