import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Redis } from "ioredis";
import { createRedisBackend, type RedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { until } from "../helpers/backend-checks.js";
import { startRedis, type TestRedis } from "../helpers/redis-server.js";
import { smallLimits } from "../helpers/small-limits.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.kill());

const options = {
  ...smallLimits,
  presenceIntervalMs: 0,
  leaseMs: 5000,
  sweepMs: 1000,
  logger: createLogger("silent"),
};

/**
 * Found by the chaos run (docs/chaos.md): a node registers a new session
 * before Redis gives it the name, and deliveries are addressed by name, so a
 * delivery published for the name's previous session on that node, arriving
 * late, reached the new session. Node A reaches Redis over a link that
 * delays everything 300 ms: its user's old session ends, the user connects
 * again at once, and meanwhile a member on node B sends to the group the old
 * session was still in (in Redis) when the message was published.
 */
it("gives a new session nothing published for the previous session of its name on the same node", { timeout: 30_000 }, async () => {
  const link = await startTcpProxy(redis.port);
  const a: RedisBackend = createRedisBackend({ target: { url: `redis://127.0.0.1:${link.port}` }, ...options });
  const b: RedisBackend = createRedisBackend({ target: { url: redis.url }, ...options });
  await Promise.all([a.start(), b.start()]);
  try {
    const bob = await b.connect("bob", { membership: true });
    await b.createGroup("bob", "team");
    const old = await a.connect("alice", { membership: true });
    await b.joinGroup("alice", "team");
    await until(old, (l) => l === "member-joined team alice");
    link.setDelay(300);
    // The old session leaves in Redis 300 ms from now; the new one registers after that.
    const leaving = a.disconnect(old);
    const fresh = a.connect("alice", { membership: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await b.send("bob", "team", "for the old session");
    const session = await fresh;
    await leaving;
    link.setDelay(0);
    await b.send("bob", "alice", "marker");
    assert.deepEqual(await until(session, (l) => l.endsWith("marker")), ["message bob>alice: marker"]);
    await until(bob, (l) => l.startsWith("member-left team alice"));
  } finally {
    await Promise.all([a.close(), b.close()]);
    await link.close();
    const admin = new Redis(redis.url);
    await admin.flushall();
    admin.disconnect();
  }
});
