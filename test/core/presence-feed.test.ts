import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createPresenceFeed } from "../../server/core/presence-feed.js";
import type { PresenceEvent } from "../../server/core/session-event.js";
import { eventually } from "../helpers/eventually.js";

const names = (event: PresenceEvent) => ({
  added: event.added.map((c) => `${c.type}:${c.name}`),
  removed: event.removed.map((c) => `${c.type}:${c.name}`),
});

describe("presence feed", () => {
  it("publishes one event per interval with each changed channel's final state, even one that came and went", () => {
    const published: PresenceEvent[] = [];
    const feed = createPresenceFeed({ intervalMs: 60_000, publish: (e) => published.push(e) });
    feed.changed({ name: "alice", type: "user" }, true);
    feed.changed({ name: "flicker", type: "user" }, true);
    feed.changed({ name: "flicker", type: "user" }, false);
    feed.changed({ name: "team", type: "group" }, false);
    // Same name, other type: a separate channel.
    feed.changed({ name: "alice", type: "group" }, true);
    assert.equal(published.length, 0);
    feed.flush();
    // flicker came and went: a client may have listed it in between, so it hears of the removal.
    assert.deepEqual(published.map(names), [{ added: ["user:alice", "group:alice"], removed: ["user:flicker", "group:team"] }]);
    feed.flush();
    assert.equal(published.length, 1);
    feed.close();
  });

  it("splits a burst into events of a bounded size, each shared by every watcher", () => {
    const published: PresenceEvent[] = [];
    const feed = createPresenceFeed({ intervalMs: 60_000, maxChangesPerEvent: 100, publish: (e) => published.push(e) });
    for (let i = 0; i < 250; i++) feed.changed({ name: `u${i}`, type: "user" }, true);
    feed.flush();
    assert.deepEqual(
      published.map((e) => e.added.length),
      [100, 100, 50],
    );
    assert.ok(published.every((e) => e.textBytes > 0));
    feed.close();
  });

  it("publishes on its own once the interval is over", async () => {
    const published: PresenceEvent[] = [];
    const feed = createPresenceFeed({ intervalMs: 20, publish: (e) => published.push(e) });
    feed.changed({ name: "bob", type: "user" }, true);
    await eventually(() => published.length > 0, "the feed published nothing on its own", 2000);
    assert.deepEqual(published.map(names), [{ added: ["user:bob"], removed: [] }]);
    feed.close();
  });
});
