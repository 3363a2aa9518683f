import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChatError } from "../../server/core/chat-error.js";
import { createMessageHistory, type HistoryBounds, type MessageHistory, type MessagePage } from "../../server/core/message-history.js";
import { createQueueBudget, type QueueBudget } from "../../server/core/queue-budget.js";
import { type ChatEvent, queuedEventBytes } from "../../server/core/session-event.js";

// The history of one process on its own, with a fake clock: no RPC, no
// sessions. Events are made here as the backend makes them (holders 0).

let nextId = 0;

/** A message as the backend makes it; its id says which it is. */
function message(channel: string, text = "hi", type: "group" | "user" = "group"): ChatEvent {
  return {
    kind: "message",
    id: `m${++nextId}`,
    sender: "someone",
    channel: { name: channel, type },
    text,
    textBytes: Buffer.byteLength(text, "utf8"),
    sentAt: new Date(0),
    holders: 0,
  };
}

/** What one message of this text weighs (see queuedEventBytes). */
const weight = (text: string) => queuedEventBytes(message("x", text));

interface Setup {
  history: MessageHistory;
  budget: QueueBudget;
  clock: { now: number };
}

function setup(bounds: Partial<HistoryBounds> = {}): Setup {
  const budget = createQueueBudget(1 << 30);
  const clock = { now: 0 };
  const history = createMessageHistory({
    messages: 1000,
    bytes: 1 << 20,
    ttlMs: 60_000,
    totalBytes: 1 << 30,
    ...bounds,
    budget,
    now: () => clock.now,
  });
  return { history, budget, clock };
}

const ids = (page: MessagePage) => page.messages.map((m) => m.id);

/** Reads a whole channel, limit at a time, following each page's cursor: the pages as read. */
function readAll(read: (before: string | undefined) => MessagePage): MessagePage[] {
  const pages: MessagePage[] = [];
  let before: string | undefined;
  do {
    const page = read(before);
    pages.push(page);
    before = page.next;
    assert.ok(pages.length < 10_000, "the pages never end");
  } while (before !== undefined);
  return pages;
}

function throwsInvalidInput(fn: () => unknown, input: string): void {
  assert.throws(
    fn,
    (error: unknown) => error instanceof ChatError && error.kind === "invalid-input" && /page_token/.test(error.message),
    `cursor ${JSON.stringify(input)} was accepted`,
  );
}

describe("message history", () => {
  it("pages a group newest first: each page continues where the last stopped, no duplicates, no gaps", () => {
    const { history } = setup();
    const sent = Array.from({ length: 10 }, () => message("room"));
    for (const m of sent) history.appendGroup("room", m);
    const pages = readAll((before) => history.groupPage("room", before === undefined ? { limit: 3 } : { before, limit: 3 }));
    assert.deepEqual(pages.map(ids), [
      [sent[9]!.id, sent[8]!.id, sent[7]!.id],
      [sent[6]!.id, sent[5]!.id, sent[4]!.id],
      [sent[3]!.id, sent[2]!.id, sent[1]!.id],
      [sent[0]!.id],
    ]);
    // The very objects that were delivered, not copies.
    assert.equal(pages[0]!.messages[0], sent[9]);
    // A limit that divides the history exactly ends without an empty page.
    const exact = readAll((before) => history.groupPage("room", before === undefined ? { limit: 5 } : { before, limit: 5 }));
    assert.deepEqual(
      exact.map((p) => p.messages.length),
      [5, 5],
    );
    assert.deepEqual(
      ids(history.groupPage("room", { limit: 100 })),
      [...sent].reverse().map((m) => m.id),
    );
    assert.deepEqual(history.groupPage("nowhere", { limit: 10 }), { messages: [] });
  });

  it("a cursor still continues exactly after messages arrive and the oldest are dropped between pages", () => {
    const { history } = setup({ messages: 12 });
    const sent = Array.from({ length: 10 }, () => message("room"));
    for (const m of sent) history.appendGroup("room", m);
    const first = history.groupPage("room", { limit: 3 });
    assert.deepEqual(ids(first), [sent[9]!.id, sent[8]!.id, sent[7]!.id]);
    // Five newer: the bound of 12 drops the three oldest.
    const newer = Array.from({ length: 5 }, () => message("room"));
    for (const m of newer) history.appendGroup("room", m);
    const second = history.groupPage("room", { before: first.next!, limit: 3 });
    assert.deepEqual(ids(second), [sent[6]!.id, sent[5]!.id, sent[4]!.id]);
    const third = history.groupPage("room", { before: second.next!, limit: 3 });
    assert.deepEqual(ids(third), [sent[3]!.id]);
    assert.equal(third.next, undefined);
  });

  it("a cursor of a channel's earlier life reads nothing of its next one", () => {
    // A group deleted and made again under its name, or a pair whose
    // messages all expired: a reader paging the old one must not be handed
    // the new one's messages as older than what it read.
    const { history, clock } = setup({ ttlMs: 1000 });
    for (let i = 0; i < 5; i++) history.appendGroup("room", message("room"));
    const first = history.groupPage("room", { limit: 2 });
    assert.ok(first.next !== undefined);
    history.dropGroup("room");
    for (let i = 0; i < 5; i++) history.appendGroup("room", message("room"));
    assert.deepEqual(history.groupPage("room", { before: first.next, limit: 2 }), { messages: [] });
    for (let i = 0; i < 5; i++) history.appendDirect("alice", "bob", message("bob", "hi", "user"));
    const pair = history.directPage("alice", "bob", { limit: 2 });
    clock.now = 2000;
    for (let i = 0; i < 5; i++) history.appendDirect("alice", "bob", message("bob", "hi", "user"));
    assert.deepEqual(history.directPage("alice", "bob", { before: pair.next!, limit: 2 }), { messages: [] });
  });

  it("keeps a pair's messages in one channel whichever way they went", () => {
    const { history } = setup();
    const a = message("bob", "to bob", "user");
    const b = message("alice", "to alice", "user");
    history.appendDirect("alice", "bob", a);
    history.appendDirect("bob", "alice", b);
    assert.deepEqual(ids(history.directPage("alice", "bob", { limit: 10 })), [b.id, a.id]);
    assert.deepEqual(ids(history.directPage("bob", "alice", { limit: 10 })), [b.id, a.id]);
    assert.equal(history.hasDirect("bob", "alice"), true);
    assert.equal(history.hasDirect("alice", "carol"), false);
    // A group named like one of them is another channel.
    assert.deepEqual(history.groupPage("bob", { limit: 10 }), { messages: [] });
  });

  it("answers invalid-input for a cursor it did not issue, and accepts any it could have", () => {
    const { history } = setup();
    for (let i = 0; i < 3; i++) history.appendGroup("room", message("room"));
    for (const bad of ["", "0", "-1", "01", "1.5", "1e3", " 1", "1 ", "abc", "0x10", "9".repeat(16), "１"]) {
      throwsInvalidInput(() => history.groupPage("room", { before: bad, limit: 10 }), bad);
      throwsInvalidInput(() => history.directPage("alice", "bob", { before: bad, limit: 10 }), bad);
    }
    // A cursor past the newest reads from the newest; one at the oldest reads nothing.
    assert.equal(history.groupPage("room", { before: "9".repeat(15), limit: 10 }).messages.length, 3);
    assert.deepEqual(history.groupPage("room", { before: "1", limit: 10 }), { messages: [] });
  });

  it("bounds a channel by count: its oldest go first, other channels keep theirs", () => {
    const { history, budget } = setup({ messages: 3 });
    const sent = Array.from({ length: 5 }, () => message("room"));
    const other = message("hall");
    history.appendGroup("hall", other);
    for (const m of sent) history.appendGroup("room", m);
    assert.deepEqual(ids(history.groupPage("room", { limit: 10 })), [sent[4]!.id, sent[3]!.id, sent[2]!.id]);
    assert.deepEqual(ids(history.groupPage("hall", { limit: 10 })), [other.id]);
    assert.equal(history.size, 4);
    assert.equal(history.bytes, 4 * weight("hi"));
    assert.equal(budget.usedBytes, 4 * weight("hi"));
  });

  it("bounds a channel by bytes: a large message pushes out as many small ones as it must", () => {
    const small = "s".repeat(100);
    const large = "L".repeat(1000);
    // Room for 4 small ones, or the large one and one small.
    const bytes = 4 * weight(small);
    assert.ok(weight(large) + weight(small) <= bytes && weight(large) + 2 * weight(small) > bytes);
    const { history, budget } = setup({ bytes });
    const sent = Array.from({ length: 4 }, () => message("room", small));
    for (const m of sent) history.appendGroup("room", m);
    assert.equal(history.size, 4);
    const big = message("room", large);
    history.appendGroup("room", big);
    assert.deepEqual(ids(history.groupPage("room", { limit: 10 })), [big.id, sent[3]!.id]);
    assert.equal(history.bytes, weight(large) + weight(small));
    assert.equal(budget.usedBytes, history.bytes);
  });

  it("bounds the total across channels: the oldest message of all goes first", () => {
    const w = weight("hi");
    const { history, budget } = setup({ totalBytes: 3 * w });
    const g1 = message("one");
    const g2 = message("two");
    const d1 = message("bob", "hi", "user");
    history.appendGroup("one", g1);
    history.appendGroup("two", g2);
    history.appendDirect("alice", "bob", d1);
    assert.equal(history.bytes, 3 * w);
    const g1b = message("one");
    history.appendGroup("one", g1b);
    assert.deepEqual(ids(history.groupPage("one", { limit: 10 })), [g1b.id]);
    const g1c = message("one");
    history.appendGroup("one", g1c);
    // "two" had only the oldest message: its history is empty now.
    assert.deepEqual(history.groupPage("two", { limit: 10 }), { messages: [] });
    assert.deepEqual(ids(history.directPage("bob", "alice", { limit: 10 })), [d1.id]);
    assert.deepEqual(ids(history.groupPage("one", { limit: 10 })), [g1c.id, g1b.id]);
    assert.equal(history.size, 3);
    assert.equal(history.bytes, 3 * w);
    assert.equal(budget.usedBytes, 3 * w);
    // One message larger than the total is not kept at all, and takes the others with it.
    const huge = message("one", "h".repeat(3 * w));
    history.appendGroup("one", huge);
    assert.equal(history.size, 0);
    assert.equal(history.bytes, 0);
    assert.equal(budget.usedBytes, 0);
  });

  it("lets messages go once they are older than the ttl, at the next read or write", () => {
    const { history, budget, clock } = setup({ ttlMs: 1000 });
    const early = message("room");
    history.appendGroup("room", early);
    clock.now = 500;
    const later = message("room");
    history.appendGroup("room", later);
    const direct = message("bob", "hi", "user");
    history.appendDirect("alice", "bob", direct);
    clock.now = 1000;
    // Exactly the ttl old: still kept.
    assert.deepEqual(ids(history.groupPage("room", { limit: 10 })), [later.id, early.id]);
    clock.now = 1001;
    assert.deepEqual(ids(history.groupPage("room", { limit: 10 })), [later.id]);
    assert.equal(history.size, 2);
    assert.equal(history.hasDirect("alice", "bob"), true);
    clock.now = 1501;
    assert.equal(history.hasDirect("alice", "bob"), false);
    assert.deepEqual(history.directPage("alice", "bob", { limit: 10 }), { messages: [] });
    assert.equal(history.size, 0);
    assert.equal(budget.usedBytes, 0);
    // A write expires too: a new message in another channel lets the old go.
    history.appendGroup("room", message("room"));
    clock.now = 5000;
    history.appendGroup("hall", message("hall"));
    assert.equal(history.size, 1);
    assert.deepEqual(history.groupPage("room", { limit: 10 }), { messages: [] });
  });

  it("lets expired messages go on an idle server too, by its timer", async () => {
    // The real clock: the timer runs every ttl (at most a minute).
    const budget = createQueueBudget(1 << 30);
    const history = createMessageHistory({ messages: 10, bytes: 1 << 20, ttlMs: 30, totalBytes: 1 << 20, budget });
    try {
      history.appendGroup("room", message("room"));
      assert.equal(history.size, 1);
      // size reads no clock: only the timer can have dropped it.
      const deadline = Date.now() + 2000;
      while (history.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(history.size, 0);
      assert.equal(budget.usedBytes, 0);
    } finally {
      history.close();
    }
  });

  it("dropGroup forgets a group's history: a new group of that name starts empty", () => {
    const { history, budget } = setup();
    for (let i = 0; i < 5; i++) history.appendGroup("room", message("room"));
    const kept = message("hall");
    history.appendGroup("hall", kept);
    history.dropGroup("room");
    assert.deepEqual(history.groupPage("room", { limit: 10 }), { messages: [] });
    assert.deepEqual(ids(history.groupPage("hall", { limit: 10 })), [kept.id]);
    assert.equal(history.size, 1);
    assert.equal(budget.usedBytes, weight("hi"));
    const fresh = message("room");
    history.appendGroup("room", fresh);
    assert.deepEqual(ids(history.groupPage("room", { limit: 10 })), [fresh.id]);
    // Dropping what is not there changes nothing.
    history.dropGroup("nowhere");
    history.dropUser("nobody");
    assert.equal(history.size, 2);
  });

  it("dropUser forgets every pair of the user, its notes to itself included, and no other", () => {
    const { history, budget } = setup();
    history.appendDirect("alice", "bob", message("bob", "hi", "user"));
    history.appendDirect("carol", "alice", message("alice", "hi", "user"));
    history.appendDirect("alice", "alice", message("alice", "hi", "user"));
    const kept = message("carol", "hi", "user");
    history.appendDirect("bob", "carol", kept);
    history.appendGroup("alice", message("alice"));
    assert.equal(history.size, 5);
    history.dropUser("alice");
    assert.equal(history.hasDirect("alice", "bob"), false);
    assert.equal(history.hasDirect("alice", "carol"), false);
    assert.equal(history.hasDirect("alice", "alice"), false);
    assert.deepEqual(ids(history.directPage("carol", "bob", { limit: 10 })), [kept.id]);
    // A group is not a pair, whatever its name.
    assert.equal(history.groupPage("alice", { limit: 10 }).messages.length, 1);
    assert.equal(history.size, 2);
    assert.equal(budget.usedBytes, 2 * weight("hi"));
    history.dropUser("bob");
    history.dropGroup("alice");
    assert.equal(history.size, 0);
    assert.equal(history.bytes, 0);
    assert.equal(budget.usedBytes, 0);
  });

  it("shed drops the oldest of all until the bytes asked for are freed, and answers what it freed", () => {
    const { history, budget } = setup();
    const w = weight("hi");
    const sent = [message("one"), message("two"), message("one"), message("two")];
    history.appendGroup("one", sent[0]!);
    history.appendGroup("two", sent[1]!);
    history.appendGroup("one", sent[2]!);
    history.appendGroup("two", sent[3]!);
    assert.equal(history.shed(1), w);
    assert.deepEqual(ids(history.groupPage("one", { limit: 10 })), [sent[2]!.id]);
    assert.equal(history.shed(w + 1), 2 * w);
    assert.deepEqual(history.groupPage("one", { limit: 10 }), { messages: [] });
    assert.deepEqual(ids(history.groupPage("two", { limit: 10 })), [sent[3]!.id]);
    assert.equal(budget.usedBytes, w);
    assert.equal(history.shed(1 << 30), w);
    assert.equal(history.shed(1), 0);
    assert.equal(history.size, 0);
    assert.equal(budget.usedBytes, 0);
  });

  it("counts an event in the budget once, however many hold it", () => {
    const { history, budget } = setup({ messages: 1 });
    const w = weight("hi");
    // Queued for two members already: the queues counted it once.
    const queued = message("room");
    queued.holders = 2;
    budget.usedBytes += w;
    history.appendGroup("room", queued);
    assert.equal(queued.holders, 3);
    assert.equal(budget.usedBytes, w);
    // Both queues let it go: history alone holds it, still counted once.
    queued.holders -= 2;
    assert.equal(budget.usedBytes, w);
    // A newer message pushes it out of history: nothing holds it any more.
    const next = message("room");
    history.appendGroup("room", next);
    assert.equal(queued.holders, 0);
    assert.equal(next.holders, 1);
    assert.equal(budget.usedBytes, w);
    // One still queued when history lets it go stays counted, by its queue.
    next.holders += 1;
    history.dropGroup("room");
    assert.equal(next.holders, 1);
    assert.equal(budget.usedBytes, w);
    next.holders -= 1;
    budget.usedBytes -= w;
    assert.equal(budget.usedBytes, 0);
  });

  it("with history off keeps nothing and counts nothing", () => {
    const { history, budget } = setup({ messages: 0 });
    assert.equal(history.enabled, false);
    const m = message("room");
    history.appendGroup("room", m);
    history.appendDirect("alice", "bob", message("bob", "hi", "user"));
    assert.equal(history.size, 0);
    assert.equal(history.bytes, 0);
    assert.equal(budget.usedBytes, 0);
    assert.equal(m.holders, 0);
    assert.deepEqual(history.groupPage("room", { limit: 10 }), { messages: [] });
    assert.equal(history.hasDirect("alice", "bob"), false);
  });

  // The bookkeeping (compacted arrays, a global order with dead entries,
  // channels forgotten and made again) checked against a plain model of the
  // rules over many random steps.
  for (const [name, bounds] of [
    ["tight bounds", { messages: 7, bytes: 6000, ttlMs: 2000, totalBytes: 20_000 }],
    ["loose bounds, one channel outliving thousands of drops", { messages: 7, bytes: 1 << 20, ttlMs: 1e9, totalBytes: 1 << 30 }],
  ] as const) {
    it(`agrees with a model of its rules over random steps: ${name}`, () => {
      const { history, budget, clock } = setup(bounds);
      const model = createModel(bounds, () => clock.now);
      let seed = 23;
      const random = (n: number) => {
        // A fixed linear congruential sequence: the same steps every run.
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const users = ["ann", "ben", "cat", "dan"];
      const groups = ["g0", "g1", "g2", "g3", "g4"];
      // In the second setting, "keep" has one message, older than all the rest, that nothing drops.
      const outliving = bounds.ttlMs === 1e9;
      if (outliving) {
        const first = message("keep");
        history.appendGroup("keep", first);
        model.append("g|keep", [], first);
      }
      for (let step = 0; step < 20_000; step++) {
        const op = random(100);
        if (op < 45) {
          const group = groups[random(groups.length)]!;
          const m = message(group, "t".repeat(random(400)));
          history.appendGroup(group, m);
          model.append(`g|${group}`, [], m);
        } else if (op < 80) {
          const a = users[random(users.length)]!;
          const b = users[random(users.length)]!;
          const m = message(b, "d".repeat(random(400)), "user");
          history.appendDirect(a, b, m);
          model.append(a < b ? `p|${a}|${b}` : `p|${b}|${a}`, a === b ? [a] : [a, b], m);
        } else if (op < 88) {
          clock.now += random(300);
        } else if (op < 91) {
          const group = groups[random(groups.length)]!;
          history.dropGroup(group);
          model.drop(`g|${group}`);
        } else if (op < 93) {
          const user = users[random(users.length)]!;
          history.dropUser(user);
          model.dropUser(user);
        } else if (op < 95) {
          // In the second setting nothing may drop "keep": shed would, first.
          if (outliving) continue;
          const bytes = random(5000);
          assert.equal(history.shed(bytes), model.shed(bytes), `step ${step}: shed(${bytes})`);
        } else {
          const limit = 1 + random(5);
          for (const group of [...groups, "keep"]) {
            const pages = readAll((before) => history.groupPage(group, before === undefined ? { limit } : { before, limit }));
            assertPages(pages, model.page(`g|${group}`), limit, `step ${step}: ${group}`);
          }
          for (const a of users) {
            for (const b of users) {
              if (b < a) continue;
              const pages = readAll((before) => history.directPage(a, b, before === undefined ? { limit } : { before, limit }));
              assertPages(pages, model.page(`p|${a}|${b}`), limit, `step ${step}: ${a}, ${b}`);
              assert.equal(history.hasDirect(b, a), model.page(`p|${a}|${b}`).length > 0);
            }
          }
        }
        assert.equal(history.size, model.size(), `step ${step}: size`);
        assert.equal(history.bytes, model.bytes(), `step ${step}: bytes`);
        assert.equal(budget.usedBytes, model.bytes(), `step ${step}: budget`);
      }
      if (outliving) {
        // Still the oldest of all after thousands of drops behind it: the first to go.
        assert.equal(history.groupPage("keep", { limit: 10 }).messages.length, 1);
        assert.equal(history.shed(1), model.shed(1));
        assert.deepEqual(history.groupPage("keep", { limit: 10 }), { messages: [] });
      }
      // Past the ttl, the next write finds nothing else left.
      clock.now += bounds.ttlMs + 1;
      history.appendGroup("g0", message("g0"));
      assert.equal(history.size, 1);
      assert.equal(budget.usedBytes, weight("hi"));
      for (const group of [...groups, "keep"]) history.dropGroup(group);
      for (const user of users) history.dropUser(user);
      assert.equal(history.size, 0);
      assert.equal(budget.usedBytes, 0);
    });
  }
});

/** The pages, read one after another, are the model's messages newest first, limit to a page. */
function assertPages(pages: MessagePage[], expected: ChatEvent[], limit: number, what: string): void {
  assert.deepEqual(
    pages.flatMap(ids),
    expected.map((m) => m.id),
    what,
  );
  for (const [i, page] of pages.entries()) {
    // Every page but the last is full; the last is empty only when there is nothing.
    if (i < pages.length - 1) assert.equal(page.messages.length, limit, `${what}: page ${i} of ${pages.length}`);
    else assert.ok(page.messages.length > 0 || expected.length === 0, `${what}: an empty last page`);
  }
}

/** The rules of message-history.ts, in the plainest form: lists, scanned. */
function createModel(bounds: HistoryBounds, now: () => number) {
  interface Kept {
    key: string;
    users: readonly string[];
    event: ChatEvent;
    size: number;
    at: number;
  }
  // Every message kept, oldest first.
  let kept: Kept[] = [];
  const total = () => kept.reduce((sum, k) => sum + k.size, 0);
  const expire = () => {
    kept = kept.filter((k) => k.at >= now() - bounds.ttlMs);
  };
  const dropOldest = (which: (k: Kept) => boolean) => {
    const i = kept.findIndex(which);
    const [gone] = kept.splice(i, 1);
    return gone!.size;
  };
  return {
    append(key: string, users: readonly string[], event: ChatEvent) {
      expire();
      kept.push({ key, users, event, size: queuedEventBytes(event), at: now() });
      const mine = () => kept.filter((k) => k.key === key);
      while (mine().length > bounds.messages || mine().reduce((sum, k) => sum + k.size, 0) > bounds.bytes) dropOldest((k) => k.key === key);
      while (total() > bounds.totalBytes) dropOldest(() => true);
    },
    page(key: string): ChatEvent[] {
      expire();
      return kept
        .filter((k) => k.key === key)
        .map((k) => k.event)
        .reverse();
    },
    drop(key: string) {
      kept = kept.filter((k) => k.key !== key);
    },
    dropUser(user: string) {
      kept = kept.filter((k) => !k.users.includes(user));
    },
    shed(bytes: number): number {
      let freed = 0;
      while (freed < bytes && kept.length > 0) freed += dropOldest(() => true);
      return freed;
    },
    size: () => kept.length,
    bytes: total,
  };
}
