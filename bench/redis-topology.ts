import { startRedisCluster } from "../test/helpers/redis-cluster.js";
import { startRedis } from "../test/helpers/redis-server.js";

/** The shapes of shared state the cluster benchmark runs the nodes against. */
export const topologyKinds = ["redis", "redis-cluster"] as const;
export type TopologyKind = (typeof topologyKinds)[number];

/** One Redis master the benchmark watches: where it listens and which process to read /proc of. */
export interface RedisMaster {
  readonly port: number;
  /** The running process's id: a restarted master has a new one. */
  readonly pid: number;
}

/** Redis as the nodes see it: one server, or the masters of a Redis Cluster. */
export interface RedisTopology {
  readonly kind: TopologyKind;
  /** Every master, in port order; one for a single Redis. */
  readonly masters: readonly RedisMaster[];
  /** The flags that point a chat node at it. */
  readonly serverArgs: readonly string[];
  /** Kills one master (SIGKILL): its connections drop at once; it stays down until startMaster(). */
  killMaster(index: number): Promise<void>;
  /**
   * Starts a killed master again on its port, empty (nothing is persisted).
   * A cluster master keeps its nodes.conf, so it comes back as the same node
   * with the same slots; this resolves once every master says the cluster
   * is up again (at most 40 s).
   */
  startMaster(index: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a Redis of the given kind on free loopback ports, empty and with
 * nothing persisted: one redis-server (test/helpers/redis-server.ts), or a
 * Redis Cluster of three masters and no replicas made the way the cluster
 * tests make theirs (`redis-cli --cluster create`).
 */
export function startRedisTopology(kind: TopologyKind, options: TopologyOptions = {}): Promise<RedisTopology> {
  return kind === "redis" ? startSingle() : startCluster(options);
}

/** Settings of {@link startRedisTopology} that a Redis Cluster takes. */
export interface TopologyOptions {
  /**
   * The masters' cluster-node-timeout: how long a master may not answer
   * before the others mark it failed and, with no replica to take its slots
   * (cluster-require-full-coverage), the cluster refuses every command.
   * Redis's default, 15 s, when not given.
   */
  clusterNodeTimeoutMs?: number;
}

async function startSingle(): Promise<RedisTopology> {
  const redis = await startRedis();
  return {
    kind: "redis",
    masters: [
      {
        port: redis.port,
        get pid() {
          return redis.pid;
        },
      },
    ],
    serverArgs: ["--redis", redis.url],
    killMaster: () => redis.kill(),
    // restart() starts the server again on its port, once it is down.
    startMaster: () => redis.restart(),
    stop: () => redis.kill(),
  };
}

/** Three masters and no replicas, from test/helpers/redis-cluster.ts, as the cluster tests start them. */
async function startCluster(options: TopologyOptions): Promise<RedisTopology> {
  const cluster = await startRedisCluster(options.clusterNodeTimeoutMs === undefined ? {} : { nodeTimeoutMs: options.clusterNodeTimeoutMs });
  // The caller names one of the masters listed.
  const master = (index: number) => cluster.masters[index]!;
  return {
    kind: "redis-cluster",
    masters: cluster.masters,
    serverArgs: ["--redis-cluster", cluster.seeds],
    killMaster: (index) => master(index).kill(),
    startMaster: (index) => master(index).start(),
    stop: () => cluster.kill(),
  };
}
