import { after, before, describe } from "node:test";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { type RedisTopology, redisTopologies, startRedisTopology } from "../helpers/redis-topology.js";
import { type BackendFactory, backendContract } from "./backend-contract.js";
import { historyContract } from "./history-contract.js";
import { realtimeContract } from "./realtime-contract.js";

for (const kind of redisTopologies) {
  describe(kind, () => {
    let topology: RedisTopology;
    before(async () => {
      topology = await startRedisTopology(kind);
    });
    after(() => topology.kill());

    /** One node on an emptied Redis: the contract's rules hold for a cluster of one. */
    const oneNode: BackendFactory = async (options) => {
      await topology.flushall();
      const backend = createRedisBackend({ ...topology.backendOptions, ...options, leaseMs: 2000, sweepMs: 500, logger: createLogger("silent") });
      try {
        await backend.start();
      } catch (error) {
        // A node that cannot start must still be closed, or its client retries for ever and the file never ends.
        await backend.close();
        throw error;
      }
      return { backend, close: () => backend.close() };
    };

    backendContract("Redis", oneNode);
    realtimeContract("Redis", oneNode);
    historyContract("Redis", oneNode);
  });
}
