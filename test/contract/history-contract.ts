import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatBackend } from "../../server/core/chat-backend.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import type { ChatEvent } from "../../server/core/session-event.js";
import { failsWith } from "../helpers/backend-checks.js";
import { eventually } from "../helpers/eventually.js";
import { messages } from "../helpers/session-events.js";
import { type BackendFactory, backendRunner } from "./backend-contract.js";

/** Waits until a session holds n messages (deliveries may cross a network), then takes them. */
async function receive(session: ChatSession, n: number): Promise<ChatEvent[]> {
  await eventually(
    () => session.pending >= n,
    () => `${session.username} holds ${session.pending} of ${n} messages`,
  );
  const taken = messages(session.take(1e9, 1e12));
  session.written();
  return taken;
}

/** Connects a name again once its last session is released: on Redis that takes steps, so the first tries may find it taken. */
async function connectAgain(b: ChatBackend, username: string): Promise<void> {
  await eventually(async () => {
    try {
      await b.connect(username);
      return true;
    } catch {
      return false;
    }
  }, `${username} could not connect again`);
}

/** What a client compares of a message: everything it shows. */
function shown(event: ChatEvent): string {
  return `${event.id} ${event.sender}>${event.channel.type}:${event.channel.name} @${event.sentAt.getTime()}: ${event.text}`;
}

/** Reads a channel's whole history a page at a time, newest first; answers the pages' sizes too. */
async function readAll(b: ChatBackend, caller: string, channel: string, limit: number): Promise<{ all: ChatEvent[]; pages: number[] }> {
  const all: ChatEvent[] = [];
  const pages: number[] = [];
  let before: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await b.listMessages(caller, channel, before === undefined ? { limit } : { before, limit });
    all.push(...page.messages);
    pages.push(page.messages.length);
    if (page.next === undefined) return { all, pages };
    before = page.next;
  }
  throw new Error("more than 100 pages");
}

/**
 * The history and safe retries every ChatBackend owes (issue 23): the
 * messages ListMessages reads are the very ones delivered, in delivery
 * order, to those who may read them, within bounds; a send retried with its
 * request id delivers once.
 */
export function historyContract(name: string, factory: BackendFactory): void {
  describe(`history contract: ${name}`, () => {
    const withBackend = backendRunner(factory);

    it(
      "lists a group's messages as they were delivered, newest first, to every member, one who joined late included",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        await b.createGroup("alice", "team");
        await b.joinGroup("bob", "team");
        const sent: ChatEvent[] = [];
        for (let i = 0; i < 6; i++) sent.push(await b.send(i % 2 === 0 ? "alice" : "bob", "team", `m${i}`));
        const delivered = await receive(bob, 6);
        await receive(alice, 6);
        // The send answers the message as delivered.
        assert.deepEqual(sent.map(shown), delivered.map(shown));
        await b.connect("carol");
        await b.joinGroup("carol", "team");
        for (const reader of ["alice", "bob", "carol"]) {
          const page = await b.listMessages(reader, "team", { limit: 100 });
          assert.deepEqual(page.messages.map(shown), delivered.map(shown).reverse(), reader);
          assert.equal(page.next, undefined);
        }
      }),
    );

    it(
      "pages back through a group's history with no gap and no repeat, while messages keep coming",
      withBackend({}, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        const texts: string[] = [];
        for (let i = 0; i < 7; i++) texts.push((await b.send("alice", "team", `m${i}`)).text);
        const first = await b.listMessages("alice", "team", { limit: 3 });
        assert.deepEqual(
          first.messages.map((m) => m.text),
          ["m6", "m5", "m4"],
        );
        assert.ok(first.next !== undefined);
        // A message sent between pages is newer than the first page: the next pages go on where it stopped.
        await b.send("alice", "team", "later");
        const second = await b.listMessages("alice", "team", { before: first.next, limit: 3 });
        assert.deepEqual(
          second.messages.map((m) => m.text),
          ["m3", "m2", "m1"],
        );
        const third = await b.listMessages("alice", "team", { before: second.next ?? "", limit: 3 });
        assert.deepEqual(
          third.messages.map((m) => m.text),
          ["m0"],
        );
        assert.equal(third.next, undefined);
      }),
    );

    it(
      "bounds a page in bytes of text as well as in messages, and still moves on by one message at least",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        await b.createGroup("alice", "team");
        for (let i = 0; i < 5; i++) await b.send("alice", "team", `${i}`.repeat(4000));
        for (let i = 0; i < 5; i++) {
          await b.send(i % 2 === 0 ? "alice" : "bob", i % 2 === 0 ? "bob" : "alice", `${i}`.repeat(4000));
          await receive(i % 2 === 0 ? bob : alice, 1);
        }
        for (const [caller, channel] of [
          ["alice", "team"],
          ["alice", "bob"],
        ] as const) {
          const pages: string[][] = [];
          let before: string | undefined;
          do {
            const page = await b.listMessages(caller, channel, { limit: 100, maxTextBytes: 10_000, ...(before === undefined ? {} : { before }) });
            pages.push(page.messages.map((m) => m.text[0] ?? ""));
            before = page.next;
          } while (before !== undefined);
          assert.deepEqual(pages, [["4", "3"], ["2", "1"], ["0"]], channel);
          const tiny = await b.listMessages(caller, channel, { limit: 100, maxTextBytes: 10 });
          assert.equal(tiny.messages.length, 1);
          assert.ok(tiny.next !== undefined);
        }
      }),
    );

    it(
      "lists the direct messages of a pair, both ways, to each of the two and to nobody else",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        await b.connect("carol");
        const sent: ChatEvent[] = [];
        for (let i = 0; i < 7; i++) {
          const [from, to] = i % 3 === 0 ? ["bob", "alice"] : ["alice", "bob"];
          sent.push(await b.send(from, to, `d${i}`));
          // Each lands before the next is sent: the pair's order is the order of the sends.
          await receive(to === "bob" ? bob : alice, 1);
        }
        await b.send("carol", "bob", "not yours");
        const expected = sent.map(shown).reverse();
        for (const [reader, other] of [
          ["alice", "bob"],
          ["bob", "alice"],
        ] as const) {
          for (const limit of [1, 2, 3, 100]) {
            const { all } = await readAll(b, reader, other, limit);
            assert.deepEqual(all.map(shown), expected, `${reader} reading ${other} by pages of ${limit}`);
          }
        }
        assert.deepEqual((await b.listMessages("carol", "alice", { limit: 100 })).messages, []);
        assert.deepEqual(
          (await b.listMessages("carol", "bob", { limit: 100 })).messages.map((m) => m.text),
          ["not yours"],
        );
      }),
    );

    it(
      "lists a user's notes to itself once",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const note = await b.send("alice", "alice", "a note");
        await receive(alice, 1);
        assert.deepEqual((await b.listMessages("alice", "alice", { limit: 10 })).messages.map(shown), [shown(note)]);
        assert.deepEqual((await readAll(b, "alice", "alice", 1)).all.map(shown), [shown(note)]);
      }),
    );

    it(
      "refuses readers who may not read, and unknown, malformed or foreign cursors, changing nothing",
      withBackend({}, async (b) => {
        await b.connect("alice");
        await b.connect("bob");
        await b.createGroup("alice", "team");
        await b.send("alice", "team", "secret");
        await failsWith(() => b.listMessages("bob", "team", { limit: 10 }), "not-allowed", "must be a member");
        await failsWith(() => b.listMessages("bob", "nobody", { limit: 10 }), "not-found", "nobody");
        await failsWith(() => b.listMessages("bob", "no/such", { limit: 10 }), "invalid-input", "channel");
        await failsWith(() => b.listMessages("nobody", "team", { limit: 10 }), "not-signed-in");
        await failsWith(() => b.listMessages("alice", "team", { before: "x", limit: 10 }), "invalid-input", "page_token");
        await b.joinGroup("bob", "team");
        assert.deepEqual(
          (await b.listMessages("bob", "team", { limit: 10 })).messages.map((m) => m.text),
          ["secret"],
        );
      }),
    );

    it(
      "starts a group created again under the same name with no history",
      withBackend({}, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        await b.send("alice", "team", "before");
        await b.leaveGroup("alice", "team");
        await b.createGroup("alice", "team");
        assert.deepEqual((await b.listMessages("alice", "team", { limit: 10 })).messages, []);
      }),
    );

    it(
      "drops a pair's history when either side's session ends: the next user of the name reads none of it",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        await b.send("alice", "bob", "to bob");
        await b.send("bob", "alice", "to alice");
        await receive(bob, 1);
        await receive(alice, 1);
        await b.disconnect(alice);
        await failsWith(() => b.listMessages("bob", "alice", { limit: 10 }), "not-found", "alice");
        await connectAgain(b, "alice");
        assert.deepEqual((await b.listMessages("alice", "bob", { limit: 10 })).messages, []);
        assert.deepEqual((await b.listMessages("bob", "alice", { limit: 10 })).messages, []);
      }),
    );

    it(
      "keeps a pair's history across sessions when names are signed identities",
      withBackend({ keepDirectHistory: true }, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        await b.send("alice", "bob", "to bob");
        await receive(bob, 1);
        await b.send("bob", "alice", "to alice");
        await receive(alice, 1);
        await b.disconnect(alice);
        // Alice is offline, and her conversation with bob is still his to read.
        assert.deepEqual(
          (await b.listMessages("bob", "alice", { limit: 10 })).messages.map((m) => m.text),
          ["to alice", "to bob"],
        );
        await connectAgain(b, "alice");
        assert.deepEqual(
          (await b.listMessages("alice", "bob", { limit: 10 })).messages.map((m) => m.text),
          ["to alice", "to bob"],
        );
      }),
    );

    it(
      "keeps at most the bounds of a channel, by count and by bytes, and nothing past its retention",
      withBackend({ history: { messages: 3, bytes: 64 * 1024, ttlMs: 60_000, totalBytes: 1 << 24 } }, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        for (let i = 0; i < 5; i++) await b.send("alice", "team", `m${i}`);
        assert.deepEqual(
          (await readAll(b, "alice", "team", 2)).all.map((m) => m.text),
          ["m4", "m3", "m2"],
        );
      }),
    );

    it(
      "keeps no more bytes per channel than its bound",
      withBackend({ history: { messages: 100, bytes: 20_000, ttlMs: 60_000, totalBytes: 1 << 24 } }, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        // 2 × 4000 + 700 bytes each, as the queues count them: two fit in 20,000, three do not.
        for (let i = 0; i < 5; i++) await b.send("alice", "team", `${i}`.repeat(4000));
        assert.deepEqual(
          (await b.listMessages("alice", "team", { limit: 100 })).messages.map((m) => m.text[0]),
          ["4", "3"],
        );
      }),
    );

    it(
      "lets messages go once they are older than the retention",
      withBackend({ history: { messages: 100, bytes: 1 << 20, ttlMs: 300, totalBytes: 1 << 24 } }, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        await b.send("alice", "team", "old");
        await new Promise((resolve) => setTimeout(resolve, 400));
        await b.send("alice", "team", "new");
        assert.deepEqual(
          (await b.listMessages("alice", "team", { limit: 100 })).messages.map((m) => m.text),
          ["new"],
        );
      }),
    );

    it(
      "answers that history is off when it keeps no messages",
      withBackend({ history: { messages: 0, bytes: 1 << 20, ttlMs: 60_000, totalBytes: 1 << 24 } }, async (b) => {
        await b.connect("alice");
        await b.createGroup("alice", "team");
        await b.send("alice", "team", "not kept");
        await failsWith(() => b.listMessages("alice", "team", { limit: 10 }), "switched-off", "--history-messages 0");
      }),
    );

    it(
      "delivers a send retried with its request id once, and answers the retry with the first message",
      withBackend({}, async (b) => {
        await b.connect("alice");
        const bob = await b.connect("bob");
        await b.createGroup("alice", "team");
        await b.joinGroup("bob", "team");
        const first = await b.send("alice", "bob", "once", "req-1");
        const again = await b.send("alice", "bob", "once", "req-1");
        assert.equal(shown(again), shown(first));
        const inGroup = await b.send("alice", "team", "once to all", "req-2");
        assert.equal(shown(await b.send("alice", "team", "once to all", "req-2")), shown(inGroup));
        // Another sender's request id is its own.
        const bobs = await b.send("bob", "alice", "mine", "req-1");
        assert.notEqual(bobs.id, first.id);
        await b.send("alice", "bob", "after");
        assert.deepEqual(
          (await receive(bob, 3)).map((m) => m.text),
          ["once", "once to all", "after"],
        );
        assert.deepEqual(
          (await b.listMessages("bob", "alice", { limit: 10 })).messages.map((m) => m.text),
          ["after", "mine", "once"],
        );
      }),
    );

    it(
      "forgets a user's request ids with its session, unless names are signed identities",
      withBackend({}, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        const first = await b.send("alice", "bob", "hello", "req-1");
        await receive(bob, 1);
        await b.disconnect(alice);
        await connectAgain(b, "alice");
        // Another person under the name: its request id is its own, and its message is delivered.
        const second = await b.send("alice", "bob", "hello", "req-1");
        assert.notEqual(second.id, first.id);
        assert.deepEqual((await receive(bob, 1)).map(shown), [shown(second)]);
      }),
    );

    it(
      "answers a retry after a reconnect with the first message when names are signed identities",
      withBackend({ keepDirectHistory: true }, async (b) => {
        const alice = await b.connect("alice");
        const bob = await b.connect("bob");
        const first = await b.send("alice", "bob", "hello", "req-1");
        await b.disconnect(alice);
        await connectAgain(b, "alice");
        assert.equal(shown(await b.send("alice", "bob", "hello", "req-1")), shown(first));
        await b.send("alice", "bob", "after");
        assert.deepEqual(
          (await receive(bob, 2)).map((m) => m.text),
          ["hello", "after"],
        );
      }),
    );

    it(
      "refuses a request id reused for another message, or longer than 64 bytes, delivering nothing",
      withBackend({}, async (b) => {
        await b.connect("alice");
        const bob = await b.connect("bob");
        await b.connect("carol");
        // A refused send leaves its request id free.
        await failsWith(() => b.send("alice", "nobody", "first", "req-1"), "not-found");
        await b.send("alice", "bob", "first", "req-1");
        await failsWith(() => b.send("alice", "bob", "other text", "req-1"), "invalid-input", "already used");
        await failsWith(() => b.send("alice", "carol", "first", "req-1"), "invalid-input", "already used");
        await failsWith(() => b.send("alice", "bob", "long", "x".repeat(65)), "invalid-input", "64");
        await b.send("alice", "bob", "last");
        assert.deepEqual(
          (await receive(bob, 2)).map((m) => m.text),
          ["first", "last"],
        );
        assert.deepEqual((await b.listMessages("carol", "alice", { limit: 10 })).messages, []);
      }),
    );
  });
}
