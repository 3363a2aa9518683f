import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createRedisBackend, type RedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { until } from "../helpers/backend-checks.js";
import { type RedisTopology, redisTopologies, startRedisTopology } from "../helpers/redis-topology.js";
import { smallLimits } from "../helpers/small-limits.js";

const options = {
  ...smallLimits,
  presenceIntervalMs: 0,
  leaseMs: 5000,
  sweepMs: 1000,
  logger: createLogger("silent"),
};

for (const kind of redisTopologies) {
  describe(kind, () => {
    let topology: RedisTopology;
    before(async () => {
      topology = await startRedisTopology(kind);
    });
    after(() => topology.kill());

    /**
     * Found by the chaos run (docs/chaos.md): a node registers a new session
     * before Redis gives it the name, and deliveries are addressed by name, so a
     * delivery published for the name's previous session on that node, arriving
     * late, reached the new session. Node A reaches Redis over a link that
     * delays everything 300 ms (on a Redis Cluster, its link to every
     * master): its user's old session ends, the user connects again at once,
     * and meanwhile a member on node B sends to the group the old session was
     * still in (in Redis) when the message was published.
     */
    it("gives a new session nothing published for the previous session of its name on the same node", { timeout: 30_000 }, async () => {
      const link = await topology.startLink();
      const a: RedisBackend = createRedisBackend({ ...link.backendOptions, ...options });
      const b: RedisBackend = createRedisBackend({ ...topology.backendOptions, ...options });
      try {
        // Inside the try: a node that fails to start must still be closed, or its client retries for ever.
        await Promise.all([a.start(), b.start()]);
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
        await topology.flushall();
      }
    });
  });
}
