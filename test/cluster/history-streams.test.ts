import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { ChatError } from "../../server/core/chat-error.js";
import { createLogger } from "../../server/ops/logger.js";
import { askRedis, startRedis, type TestRedis } from "../helpers/redis-server.js";
import { smallLimits } from "../helpers/small-limits.js";

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.kill());

/**
 * The history streams' ids are Redis's clock in microseconds (see
 * redis-scripts.ts). A clock that went back must not fail the send that
 * publishes, for history and delivery are one step: the entry goes after
 * the newest one instead.
 */
it("keeps a message after the newest of its stream when Redis's clock is behind it", async () => {
  const backend = createRedisBackend({ target: { url: redis.url }, ...smallLimits, leaseMs: 2000, sweepMs: 500, logger: createLogger("silent") });
  await backend.start();
  try {
    await backend.connect("alice");
    await backend.createGroup("alice", "team");
    await backend.send("alice", "team", "now");
    // An entry from a clock a minute ahead, in microseconds.
    const ahead = String((Date.now() + 60_000) * 1000);
    await askRedis(redis.port, (r) => r.xadd("chat:{team}:history", `${ahead}-0`, "m", "x|alice|0|from the future", "s", "716"));
    await backend.send("alice", "team", "after it");
    const { messages } = await backend.listMessages("alice", "team", { limit: 10 });
    assert.deepEqual(
      messages.map((m) => m.text),
      ["after it", "from the future", "now"],
    );
    const ids = await askRedis(redis.port, (r) => r.xrevrange("chat:{team}:history", "+", "-", "COUNT", 1));
    assert.equal(ids[0]?.[0], `${ahead}-1`);
  } finally {
    await backend.close();
  }
});

/**
 * The channel's record of a request id carries the text's digest: were the
 * sender's binding gone (it expires a round trip before the record), a
 * request id used again for another text is refused by the send script
 * itself, rather than answered with the first message.
 */
it("refuses a request id the channel took for another text, even without the sender's binding", async () => {
  const backend = createRedisBackend({ target: { url: redis.url }, ...smallLimits, leaseMs: 2000, sweepMs: 500, logger: createLogger("silent") });
  await backend.start();
  try {
    await backend.connect("alice");
    await backend.connect("bob");
    const first = await backend.send("alice", "bob", "first text", "req-9");
    const bindings = await askRedis(redis.port, (r) => r.keys("chat:{alice}:rid:*"));
    assert.equal(bindings.length, 1);
    await askRedis(redis.port, (r) => r.del(...bindings));
    await assert.rejects(
      async () => backend.send("alice", "bob", "other text", "req-9"),
      (error: unknown) => error instanceof ChatError && error.kind === "invalid-input",
    );
    // The same text is still a retry of the first.
    assert.equal((await backend.send("alice", "bob", "first text", "req-9")).id, first.id);
  } finally {
    await backend.close();
  }
});
