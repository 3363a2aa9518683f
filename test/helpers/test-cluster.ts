import type { ServerConfig } from "../../server/ops/server-settings.js";
import { type RedisTopology, type RedisTopologyKind, startRedisTopology } from "./redis-topology.js";
import { startTestServer, type TestServer } from "./test-server.js";

/** Nodes in cluster mode on a Redis topology of their own. */
export interface TestCluster {
  /** The shared store: one Redis or a Redis Cluster. */
  readonly topology: RedisTopology;
  readonly nodes: TestServer[];
  stop(): Promise<void>;
}

/** Starts a Redis topology of this kind and that many nodes on it, each with the given settings over the test defaults. */
export async function startTestCluster(kind: RedisTopologyKind, count: number, overrides: Partial<ServerConfig> = {}): Promise<TestCluster> {
  const topology = await startRedisTopology(kind);
  const nodes: TestServer[] = [];
  try {
    for (let i = 0; i < count; i++) nodes.push(await startTestServer({ ...topology.settings, webPort: 0, ...overrides }));
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    await topology.kill();
    throw error;
  }
  return {
    topology,
    nodes,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await topology.kill();
    },
  };
}
