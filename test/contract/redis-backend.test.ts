import { after, before } from "node:test";
import { Redis } from "ioredis";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { startRedis, type TestRedis } from "../helpers/redis-server.js";
import { type BackendFactory, backendContract } from "./backend-contract.js";
import { realtimeContract } from "./realtime-contract.js";

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.kill());

/** One node on an emptied Redis: the contract's rules hold for a cluster of one. */
const oneNode: BackendFactory = async (options) => {
  const admin = new Redis(redis.url);
  await admin.flushall();
  admin.disconnect();
  const backend = createRedisBackend({ target: { url: redis.url }, ...options, leaseMs: 2000, sweepMs: 500, logger: createLogger("silent") });
  await backend.start();
  return { backend, close: () => backend.close() };
};

backendContract("Redis", oneNode);
realtimeContract("Redis", oneNode);
