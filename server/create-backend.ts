import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import { createRedisBackend } from "./cluster/redis-backend.js";
import type { RedisTarget } from "./cluster/redis-link.js";
import type { ChatBackend } from "./core/chat-backend.js";
import { describeReason } from "./core/chat-error.js";
import { createMemoryBackend, type MemoryBackendOptions } from "./core/memory-backend.js";
import { ConfigError } from "./ops/config-error.js";
import { type ServerConfig, settingLabel } from "./ops/server-settings.js";

/** A backend, and how its connection to shared state starts and ends. */
export interface BackendLifecycle {
  backend: ChatBackend;
  /** In cluster mode, the Redis connection that other shared state (rate limits) may use. */
  store: Redis | Cluster | undefined;
  /** Connects to shared state; rejects when it cannot be reached. Resolves with the node's id in cluster mode. */
  start(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** The limits of the configuration that every backend applies. */
function backendLimits(
  config: ServerConfig,
): Required<
  Pick<
    MemoryBackendOptions,
    | "queueLimit"
    | "queueLimitBytes"
    | "maxQueuedBytes"
    | "maxGroupsPerUser"
    | "maxGroups"
    | "resumeGraceMs"
    | "resumeHistory"
    | "presenceIntervalMs"
    | "history"
    | "keepDirectHistory"
    | "dedup"
  >
> {
  return {
    queueLimit: config.queueLimit,
    queueLimitBytes: config.queueLimitBytes,
    maxQueuedBytes: config.maxQueuedBytes,
    maxGroupsPerUser: config.maxGroupsPerUser,
    maxGroups: config.maxGroups,
    resumeGraceMs: config.resumeGraceMs,
    resumeHistory: { events: config.resumeHistory, bytes: config.resumeHistoryBytes },
    presenceIntervalMs: config.presence ? config.presenceIntervalMs : 0,
    history: { messages: config.historyMessages, bytes: config.historyBytes, ttlMs: config.historyTtl, totalBytes: config.historyTotalBytes },
    // A signed name is one person's for good: its conversations outlive its sessions.
    keepDirectHistory: config.jwtSecret !== undefined || config.jwtPublicKey !== undefined || config.jwksUrl !== undefined,
    dedup: { windowMs: config.dedupWindow, perUser: config.dedupPerUser, total: config.dedupTotal },
  };
}

/**
 * Creates the backend the configuration asks for: Redis in cluster mode
 * (--redis or --redis-cluster), which tells onAvailability when it loses and regains Redis, or
 * else the in-memory one.
 */
export function createBackend(config: ServerConfig, logger: Logger, onAvailability: (up: boolean) => void): BackendLifecycle {
  const target: RedisTarget | undefined =
    config.redis !== undefined ? { url: config.redis } : config.redisCluster !== undefined ? { clusterNodes: config.redisCluster } : undefined;
  if (target === undefined) {
    const memory = createMemoryBackend(backendLimits(config));
    return { backend: memory, store: undefined, start: async () => undefined, close: async () => memory.close() };
  }
  const cluster = createRedisBackend({
    target,
    ...backendLimits(config),
    leaseMs: config.leaseMs,
    sweepMs: config.sweepMs,
    logger,
    onAvailability,
  });
  return {
    backend: cluster,
    store: cluster.store,
    start: async () => {
      try {
        await cluster.start();
      } catch (error) {
        await cluster.close();
        const where =
          "url" in target ? `${settingLabel("redis")} ${redactUrl(target.url)}` : `${settingLabel("redisCluster")} ${target.clusterNodes.join(",")}`;
        throw new ConfigError(`${where}: cannot reach Redis (${describeReason(error)})`);
      }
      return cluster.nodeId;
    },
    close: () => cluster.close(),
  };
}

/** A URL without its password, for messages. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== "") parsed.password = "***";
  return parsed.toString().replace(/\/$/, "");
}
