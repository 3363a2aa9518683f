import type { ServerConfig } from "../../server/ops/server-settings.js";
import { startRedis, type TestRedis } from "./redis-server.js";
import { startTestServer, type TestServer } from "./test-server.js";

/** Nodes in cluster mode on a Redis of their own. */
export interface TestCluster {
  readonly redis: TestRedis;
  readonly nodes: TestServer[];
  stop(): Promise<void>;
}

/** Starts a Redis and that many nodes on it, each with the given settings over the test defaults. */
export async function startTestCluster(count: number, overrides: Partial<ServerConfig> = {}): Promise<TestCluster> {
  const redis = await startRedis();
  const nodes: TestServer[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startTestServer({ redis: redis.url, webPort: 0, ...overrides }));
  return {
    redis,
    nodes,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.kill();
    },
  };
}
