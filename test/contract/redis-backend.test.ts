import { after, before } from "node:test";
import { Redis } from "ioredis";
import { createRedisBackend } from "../../server/cluster/redis-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { startRedis, type TestRedis } from "../helpers/redis-server.js";
import { backendContract } from "./backend-contract.js";

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.kill());

backendContract("Redis", async (options) => {
  const admin = new Redis(redis.url);
  await admin.flushall();
  admin.disconnect();
  const backend = createRedisBackend({ url: redis.url, ...options, leaseMs: 2000, sweepMs: 500, logger: createLogger("silent") });
  await backend.start();
  return { backend, close: () => backend.close() };
});
