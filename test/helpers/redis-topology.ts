import { Cluster, Redis } from "ioredis";
import type { RedisBackendOptions } from "../../server/cluster/redis-backend.js";
import type { ServerConfig } from "../../server/ops/server-settings.js";
import { startRedisCluster, type TestRedisCluster } from "./redis-cluster.js";
import { askRedis, startRedis, type TestRedis } from "./redis-server.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

/** The shapes of shared store the cluster tests run on: one Redis, or a Redis Cluster of three masters. */
export type RedisTopologyKind = "redis" | "redis-cluster";

/** Every topology, for `for (const kind of redisTopologies) describe(kind, ...)`. */
export const redisTopologies: readonly RedisTopologyKind[] = ["redis", "redis-cluster"];

/**
 * How a Redis backend made in a test reaches the topology, spread into
 * createRedisBackend's options: `{ target: { url } }` for one Redis,
 * `{ target: { clusterNodes } }` (the seeds, "host:port", and maybe a
 * natMap, for a link's proxies) for a cluster.
 */
export type RedisBackendTarget = Pick<RedisBackendOptions, "target">;

/** A shard channel or a plain pub/sub channel that something is subscribed to. */
export interface SubscribedChannel {
  readonly channel: string;
  /** Subscribed with SSUBSCRIBE (published to with SPUBLISH), not SUBSCRIBE. */
  readonly sharded: boolean;
}

/** A way to the topology that a test can slow down: every connection a backend makes through it is delayed alike. */
export interface RedisLink {
  /** Options for createRedisBackend that reach the topology through this link. */
  readonly backendOptions: RedisBackendTarget;
  /** Holds every chunk this long, both ways, on every connection; 0 carries them at once. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

/** A running topology, with what the cluster tests need to point nodes at it, look inside it and fail it. */
export interface RedisTopology {
  readonly kind: RedisTopologyKind;
  /** Server settings that put a node in cluster mode on it: `{ redis: url }` or `{ redisCluster: seeds }`. */
  readonly settings: Partial<ServerConfig>;
  /** The command-line flags that say the same: `--redis <url>` or `--redis-cluster <seeds>`. */
  readonly args: readonly string[];
  /** Options for createRedisBackend that reach it (see {@link RedisBackendTarget}). */
  readonly backendOptions: RedisBackendTarget;
  /** Every redis-server process: the one, or the three masters. */
  readonly servers: readonly TestRedis[];
  /** The Redis that holds this key: the one, or the master that owns the key's slot. */
  holderOf(key: string): Promise<TestRedis>;
  /** A new client for reading and writing shared state by key (ioredis Redis or Cluster); the caller disconnects it. */
  admin(): Redis | Cluster;
  /** The keys that match this pattern, on every server. */
  keys(pattern: string): Promise<string[]>;
  /** The channels that match this pattern and have a subscriber, plain and sharded, on every server. */
  subscribedChannels(pattern: string): Promise<SubscribedChannel[]>;
  /** Publishes a payload on a channel as its subscribers listen to it: PUBLISH or SPUBLISH. */
  publish(channel: SubscribedChannel, payload: string): Promise<void>;
  /** Drops every subscriber connection on every server (CLIENT KILL TYPE pubsub), as Redis does to one over its output buffer limit. */
  killSubscribers(): Promise<void>;
  /** Opens a link that every connection of one backend goes through (a TCP proxy per server). */
  startLink(): Promise<RedisLink>;
  /** Empties every server. */
  flushall(): Promise<void>;
  /** Kills every server, and cleans up after them. */
  kill(): Promise<void>;
}

/** Runs one command on one server over a connection of its own, which it closes. */
const on = <T>(server: TestRedis, run: (redis: Redis) => Promise<T>): Promise<T> => askRedis(server.port, run);

/** What every server shows: its keys and subscribed channels, and its subscribers to drop. */
function perServer(servers: readonly TestRedis[]) {
  const all = <T>(run: (redis: Redis) => Promise<T[]>) => Promise.all(servers.map((s) => on(s, run))).then((lists) => lists.flat());
  return {
    keys: (pattern: string) => all((r) => r.keys(pattern)),
    subscribedChannels: async (pattern: string): Promise<SubscribedChannel[]> => {
      // ioredis types PUBSUB's reply as unknown; CHANNELS and SHARDCHANNELS answer lists of names.
      const plain = await all(async (r) => (await r.pubsub("CHANNELS", pattern)) as string[]);
      const sharded = await all(async (r) => (await r.call("PUBSUB", "SHARDCHANNELS", pattern)) as string[]);
      return [...plain.map((channel) => ({ channel, sharded: false })), ...sharded.map((channel) => ({ channel, sharded: true }))];
    },
    killSubscribers: async () => {
      await all(async (r) => [await r.client("KILL", "TYPE", "pubsub")]);
    },
    flushall: async () => {
      await all(async (r) => [await r.flushall()]);
    },
  };
}

/** One Redis: every key on it. */
async function startSingle(): Promise<RedisTopology> {
  const redis = await startRedis();
  return {
    kind: "redis",
    settings: { redis: redis.url },
    args: ["--redis", redis.url],
    backendOptions: { target: { url: redis.url } },
    servers: [redis],
    holderOf: async () => redis,
    admin: () => new Redis(redis.url),
    ...perServer([redis]),
    publish: async ({ channel, sharded }, payload) => {
      await on(redis, (r) => (sharded ? r.spublish(channel, payload) : r.publish(channel, payload)));
    },
    async startLink() {
      const proxy = await startTcpProxy(redis.port);
      return { backendOptions: { target: { url: `redis://127.0.0.1:${proxy.port}` } }, setDelay: (ms) => proxy.setDelay(ms), close: () => proxy.close() };
    },
    kill: () => redis.kill(),
  };
}

/** A new ioredis Cluster client on these seeds. */
function clusterClient(cluster: TestRedisCluster): Cluster {
  return new Cluster(cluster.seedList.map((address) => ({ host: "127.0.0.1", port: Number(address.split(":")[1]) })));
}

/** Three masters: a key on the one that owns its slot. */
async function startCluster(): Promise<RedisTopology> {
  const cluster = await startRedisCluster();
  const seeds = [...cluster.seedList];
  const settings: Partial<ServerConfig> = { redisCluster: seeds };
  return {
    kind: "redis-cluster",
    settings,
    args: ["--redis-cluster", cluster.seeds],
    backendOptions: { target: { clusterNodes: seeds } },
    servers: cluster.masters,
    holderOf: (key) => cluster.masterOf(key),
    admin: () => clusterClient(cluster),
    ...perServer(cluster.masters),
    publish: async ({ channel, sharded }, payload) => {
      const client = clusterClient(cluster);
      try {
        await (sharded ? client.spublish(channel, payload) : client.publish(channel, payload));
      } finally {
        client.disconnect();
      }
    },
    async startLink() {
      // One proxy per master; the cluster announces the masters' own
      // addresses, which the natMap turns into their proxies'.
      const proxies: TcpProxy[] = await Promise.all(cluster.masters.map((m) => startTcpProxy(m.port)));
      const natMap: Record<string, { host: string; port: number }> = {};
      cluster.masters.forEach((m, i) => {
        natMap[m.address] = { host: "127.0.0.1", port: proxies[i]!.port };
      });
      return {
        backendOptions: { target: { clusterNodes: proxies.map((p) => `127.0.0.1:${p.port}`), natMap } },
        setDelay: (ms) => {
          for (const p of proxies) p.setDelay(ms);
        },
        close: async () => {
          await Promise.all(proxies.map((p) => p.close()));
        },
      };
    },
    kill: () => cluster.kill(),
  };
}

/** Starts a topology of its own for a test: one redis-server, or a Redis Cluster of three masters (about 3 s). */
export function startRedisTopology(kind: RedisTopologyKind): Promise<RedisTopology> {
  return kind === "redis" ? startSingle() : startCluster();
}
