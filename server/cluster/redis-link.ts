import { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { scripts } from "./redis-scripts.js";

/**
 * The chat's Lua scripts, as ioredis commands. The first argument of each
 * is the key that routes it: a key of the one name (or the directory) whose
 * slot the script works in (see redis-keys.ts).
 */
export interface ChatCommands {
  chatConnect(key: string, node: string, user: string, reclaim: string, tokenHash: string, epoch: string, who: string): Promise<string[]>;
  chatRelease(key: string, node: string, user: string, keepDirect: string): Promise<string[]>;
  chatDrop(key: string, node: string, user: string, keepDirect: string): Promise<string>;
  chatHold(key: string, node: string, user: string, graceMs: number): Promise<string>;
  chatResumed(key: string, node: string, user: string): Promise<string>;
  chatTakeover(key: string, node: string, user: string, tokenHash: string, newTokenHash: string, epoch: string): Promise<string[]>;
  chatEnter(key: string, user: string, group: string, max: number, notice: string): Promise<string>;
  chatCreate(key: string, group: string, user: string, epoch: string, userEpoch: string): Promise<string>;
  chatJoin(key: string, group: string, user: string, userEpoch: string): Promise<string>;
  chatLeave(key: string, group: string, user: string, reason: string, detail: string): Promise<string>;
  chatMembers(key: string, group: string, user: string): Promise<string[]>;
  chatSend(
    key: string,
    channel: string,
    sender: string,
    fields: string,
    tag: string,
    size: number,
    maxMessages: number,
    maxBytes: number,
    ttlMs: number,
    requestId: string,
    windowMs: number,
    digest: string,
  ): Promise<string>;
  chatRequest(key: string, sender: string, requestId: string, channel: string, digest: string, windowMs: number, scope: string): Promise<string>;
  chatHistory(key: string, mode: "auto" | "direct", name: string, other: string, tag: string, upto: string, count: number, check: string): Promise<string[]>;
  chatDirectory(key: string, node: string, presence: string, ...changes: string[]): Promise<string>;
  chatSweep(key: string, node: string, sweeper: string, lockMs: number): Promise<string[]>;
}

/**
 * Where the shared state lives: one Redis, or the seed nodes of a Redis
 * Cluster, with the address to use instead of each that the cluster's
 * masters announce, where they sit behind a NAT (or a test's proxies).
 */
export type RedisTarget = { url: string } | { clusterNodes: readonly string[]; natMap?: Record<string, { host: string; port: number }> };

/** A connection that runs the chat's scripts: a Redis, or a Redis Cluster that routes each by its key. */
export type ChatStore = (Redis | Cluster) & ChatCommands;

/** Settings of {@link createRedisLink}. */
export interface RedisLinkOptions {
  target: RedisTarget;
  logger: Logger;
  /** A message on a shard channel this link subscribed to. */
  onMessage(channel: string, payload: string): void;
  /** The command connection or a subscription dropped: what was published meanwhile may be lost. */
  onLost(): void;
  /** The command connection and the subscriber are up again: the owner may resubscribe and serve. */
  onReady(): void;
}

/**
 * A node's connections to the shared state, whichever its shape: the
 * command connection with the chat's scripts, and subscriptions to shard
 * channels (SSUBSCRIBE: on one Redis a subscriber connection of its own, on
 * a Redis Cluster one per master, each channel on the master of its slot).
 */
export interface RedisLink {
  readonly store: ChatStore;
  /** Whether commands can be sent and subscriptions made now. */
  readonly ready: boolean;
  /** Connects; rejects with the reason when the store cannot be reached. */
  connect(): Promise<void>;
  /** Subscribes to shard channels; resolves once the store confirmed. */
  subscribe(channels: readonly string[]): Promise<void>;
  /** Unsubscribes from shard channels. */
  unsubscribe(channels: readonly string[]): Promise<void>;
  /** Closes every connection. */
  disconnect(): void;
}

// Commands fail at once while Redis is away instead of queueing, and after
// two seconds when it hangs: a chat call that cannot be served now should
// say so now. A command whose connection closed before its answer came is
// failed, never sent again on the next connection: it may have run (the
// chaos checker caught a send script that ran twice, on a Redis that then
// restarted empty, and answered NOT_FOUND for a message it had delivered).
const redisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  lazyConnect: true,
  retryStrategy: (n: number) => Math.min(100 * n, 1000),
};

/** Creates the link to one Redis or to a Redis Cluster. */
export function createRedisLink(options: RedisLinkOptions): RedisLink {
  const { target } = options;
  return "url" in target ? new SingleRedisLink(options, target.url) : new ClusterLink(options, target.clusterNodes, target.natMap);
}

/** Adds the chat's scripts to a connection. */
function withScripts(client: Redis | Cluster): ChatStore {
  for (const [name, lua] of Object.entries(scripts)) client.defineCommand(name, { numberOfKeys: 1, lua });
  // defineCommand adds one method per script at run time, which ioredis's
  // types cannot express; ChatCommands names them, with scripts as their source.
  return client as ChatStore;
}

/** Splits "host:port" into what ioredis takes. */
function hostAndPort(seed: string): { host: string; port: number } {
  const colon = seed.lastIndexOf(":");
  return { host: seed.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(seed.slice(colon + 1)) };
}

/** One Redis: a command connection and a subscriber connection. */
class SingleRedisLink implements RedisLink {
  readonly store: ChatStore;
  private readonly subscriber: Redis;

  constructor(options: RedisLinkOptions, url: string) {
    this.store = withScripts(new Redis(url, redisOptions));
    // The owner resubscribes (after onReady) rather than ioredis's
    // autoResubscribe, so that a node serves again only once Redis has
    // confirmed every subscription it needs.
    this.subscriber = new Redis(url, { ...redisOptions, enableOfflineQueue: true, autoResubscribe: false });
    const { logger } = options;
    this.store.on("error", (err: Error) => logger.debug({ err: err.message }, "Redis connection error"));
    this.subscriber.on("error", (err: Error) => logger.debug({ err: err.message }, "Redis subscriber error"));
    for (const connection of [this.store, this.subscriber]) {
      connection.on("close", () => options.onLost());
      connection.on("ready", () => {
        if (this.ready) options.onReady();
      });
    }
    this.subscriber.on("smessage", (channel: string, payload: string) => options.onMessage(channel, payload));
  }

  get ready(): boolean {
    return this.store.status === "ready" && this.subscriber.status === "ready";
  }

  async connect(): Promise<void> {
    const seen: { error?: Error } = {};
    const remember = (err: Error) => {
      seen.error = err;
    };
    this.store.once("error", remember);
    this.subscriber.once("error", remember);
    try {
      await this.store.connect();
      await this.subscriber.connect();
    } catch (error) {
      // ioredis rejects a failed first connect with "Connection is
      // closed."; the error event before it says why.
      throw seen.error ?? error;
    } finally {
      this.store.off("error", remember);
      this.subscriber.off("error", remember);
    }
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this.subscriber.ssubscribe(...channels);
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    if (channels.length > 0) await this.subscriber.sunsubscribe(...channels);
  }

  disconnect(): void {
    this.subscriber.disconnect();
    this.store.disconnect();
  }
}

/**
 * A Redis Cluster: ioredis routes each script by its key's slot, and keeps
 * one sharded subscriber per master, each channel on its slot's master.
 */
class ClusterLink implements RedisLink {
  readonly store: ChatStore;
  private readonly cluster: Cluster;

  constructor(options: RedisLinkOptions, seeds: readonly string[], natMap: Record<string, { host: string; port: number }> | undefined) {
    this.cluster = new Cluster(seeds.map(hostAndPort), {
      ...(natMap === undefined ? {} : { natMap }),
      shardedSubscribers: true,
      // With it off, ioredis's own ready check fails on a master whose
      // connection is still opening, and the cluster never gets ready. A
      // command made while the cluster is down waits for it; the node
      // refuses new calls at once, through its availability.
      enableOfflineQueue: true,
      // A command whose connection closed may have run: failed, not sent again (see redisOptions).
      retryDelayOnFailover: 0,
      lazyConnect: true,
      clusterRetryStrategy: (n: number) => Math.min(100 * n, 1000),
      redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 2000, autoResendUnfulfilledCommands: false },
    });
    this.store = withScripts(this.cluster);
    const { logger } = options;
    this.cluster.on("error", (err: Error) => logger.debug({ err: err.message }, "Redis Cluster error"));
    this.cluster.on("nodeError", (err: Error, node: string) => logger.debug({ err: err.message, node }, "Redis Cluster node error"));
    // A master's subscriber or connection that ends loses what its channels carried meanwhile.
    this.cluster.on("-node", () => options.onLost());
    this.cluster.on("close", () => options.onLost());
    this.cluster.on("ready", () => options.onReady());
    this.cluster.on("smessage", (channel: string, payload: string) => options.onMessage(channel, payload));
    // ioredis opens a master's connection on its first command: open each
    // as soon as it is known, so that the first call does not wait for it.
    this.cluster.on("+node", (node: Redis) => {
      if (node.status === "wait") node.connect().catch(() => undefined);
    });
  }

  get ready(): boolean {
    return this.cluster.status === "ready";
  }

  async connect(): Promise<void> {
    await this.cluster.connect();
  }

  async subscribe(channels: readonly string[]): Promise<void> {
    // One command per channel: a sharded SSUBSCRIBE must name channels of one slot.
    await Promise.all(channels.map((channel) => this.cluster.ssubscribe(channel)));
  }

  async unsubscribe(channels: readonly string[]): Promise<void> {
    await Promise.all(channels.map((channel) => this.cluster.sunsubscribe(channel)));
  }

  disconnect(): void {
    this.cluster.disconnect();
  }
}
