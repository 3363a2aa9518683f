import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { ChatError } from "../core/chat-error.js";
import { scripts } from "./redis-scripts.js";

/** The chat's Lua scripts, as ioredis commands; each answers a status word. */
export interface ChatCommands {
  chatConnect(node: string, user: string, reclaim: string, tokenHash: string, membership: string): Promise<string>;
  chatDisconnect(node: string, user: string, reason: string, detail: string): Promise<string>;
  chatSweep(node: string, detail: string): Promise<string>;
  chatReleaseNode(node: string, detail: string): Promise<string>;
  chatHold(node: string, user: string, graceMs: number): Promise<string>;
  chatResumed(node: string, user: string, membership: string): Promise<string>;
  chatTakeover(node: string, user: string, tokenHash: string, newTokenHash: string, membership: string, detail: string): Promise<string>;
  chatCreateGroup(user: string, group: string, max: number, maxTotal: number): Promise<string>;
  chatJoinGroup(user: string, group: string, max: number): Promise<string>;
  chatLeaveGroup(user: string, group: string): Promise<string>;
  /** Answers ["ok", ...members] or [status]. */
  chatListMembers(user: string, group: string): Promise<string[]>;
  chatSend(user: string, channel: string, id: string, text: string, at: number): Promise<string>;
}

/** Settings of {@link createRedisNode}. */
export interface RedisNodeOptions {
  /** A redis:// URL. */
  url: string;
  /** How long this node's lease lives without a refresh; it is refreshed three times as often. */
  leaseMs: number;
  /** How often this node looks for nodes whose lease ran out. */
  sweepMs: number;
  logger: Logger;
  /** Told when Redis becomes reachable (true) or unreachable (false). */
  onAvailability?: (available: boolean) => void;
  /**
   * Channels every node may listen to besides its own (presence changes):
   * subscribed, and confirmed, with it.
   */
  broadcastChannels?: readonly string[];
  /** A message published on this node's delivery channel, or on one of the broadcast channels. */
  onDelivery(channel: string, payload: string): void;
  /** This node's sessions must end: Redis was lost, the lease ran out, or the node is closing. */
  onLost(reason: ChatError): void;
}

/** One node's place in the cluster: its connections to Redis, its lease, its delivery channel. */
export interface RedisNode {
  /** This node's id, new at every start. */
  readonly id: string;
  /** Whether Redis is reachable and this node registered and subscribed. */
  readonly available: boolean;
  /** The command connection, with the chat's scripts. */
  readonly redis: Redis & ChatCommands;
  /** Connects, subscribes and registers; rejects when Redis cannot be reached. */
  start(): Promise<void>;
  /** Ends this node's sessions, releases its users and leaves Redis. */
  close(): Promise<void>;
  /** Runs a command, turning connection failures into UNAVAILABLE; ChatErrors pass. */
  call<T>(run: () => Promise<T>): Promise<T>;
}

/** The error of every call made while Redis is away. */
export const unavailable = () => new ChatError("unavailable", "the chat's shared store (Redis) is unreachable; try again");

/**
 * Creates a node's link to the cluster. Nodes hold leases that expire unless
 * refreshed; survivors sweep the users of a node whose lease ran out. While
 * Redis is unreachable the node serves nothing (onLost ends its sessions),
 * until Redis answers again, the subscription is confirmed, and the node has
 * released what it held before.
 */
export function createRedisNode(options: RedisNodeOptions): RedisNode {
  return new RedisNodeImpl(options);
}

// Commands fail at once while Redis is away instead of queueing, and after
// two seconds when it hangs: a chat call that cannot be served now should
// say so now.
const redisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  lazyConnect: true,
  retryStrategy: (n: number) => Math.min(100 * n, 1000),
};

/**
 * The one RedisNode: a small state machine (connected, subscribed,
 * registered, available) over its two connections, the command one and the
 * subscriber.
 */
class RedisNodeImpl implements RedisNode {
  readonly id = randomUUID();
  readonly redis: Redis & ChatCommands;
  private readonly subscriber: Redis;
  private readonly channels: readonly string[];
  private readonly leaseKey = `chat:lease:${this.id}`;
  private isAvailable = false;
  private closing = false;
  private started = false;
  // Whether Redis has confirmed this node's subscriptions (its delivery
  // channel and the broadcast ones) on the current subscriber connection:
  // without them, messages for this node's users would be published to nobody.
  private subscribed = false;
  // Counts the subscriber's connections, so that a late confirmation from a
  // dropped one is not taken for the current one's.
  private subscriberGeneration = 0;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: RedisNodeOptions) {
    const client = new Redis(options.url, redisOptions);
    for (const [name, lua] of Object.entries(scripts)) client.defineCommand(name, { numberOfKeys: 0, lua });
    // defineCommand adds one method per script at run time, which ioredis's
    // types cannot express; ChatCommands names them, with scripts as their source.
    this.redis = client as Redis & ChatCommands;
    // The subscriber resubscribes by itself (below) rather than through
    // ioredis's autoResubscribe, so that the node serves again only once Redis
    // has confirmed the subscription.
    this.subscriber = new Redis(options.url, { ...redisOptions, enableOfflineQueue: true, autoResubscribe: false });
    this.channels = [`chat:deliver:${this.id}`, ...(options.broadcastChannels ?? [])];
  }

  get available(): boolean {
    return this.isAvailable;
  }

  private setAvailable(value: boolean): void {
    if (this.isAvailable === value) return;
    this.isAvailable = value;
    this.options.logger.info({ node: this.id }, value ? "Redis reachable: serving" : "Redis unreachable: not serving");
    this.options.onAvailability?.(value);
  }

  private async register(): Promise<void> {
    await this.redis.set(this.leaseKey, "1", "PX", this.options.leaseMs);
    await this.redis.sadd("chat:nodes", this.id);
  }

  /** Both connections are up and the subscription confirmed: the node may serve. */
  private canServe(): boolean {
    return this.redis.status === "ready" && this.subscribed;
  }

  /**
   * After an outage: release whatever this node held before (its users may
   * still be listed if Redis kept its data), then register again.
   */
  private async recover(): Promise<void> {
    try {
      await this.redis.chatReleaseNode(this.id, "its server lost its link to the chat's shared store");
      await this.register();
      // Either connection may have dropped meanwhile: serve only with both.
      if (this.canServe()) this.setAvailable(true);
    } catch (err) {
      this.options.logger.warn({ err }, "could not register with Redis yet");
    }
  }

  /** Marks Redis unreachable: health turns NOT_SERVING and every stream ends. */
  private goneAway(): void {
    if (this.closing || !this.isAvailable) return;
    this.setAvailable(false);
    this.options.onLost(unavailable());
  }

  /** The subscriber connection is back: subscribe again, then serve again if the command connection is up too. */
  private async resubscribe(): Promise<void> {
    const generation = this.subscriberGeneration;
    try {
      await this.subscriber.subscribe(...this.channels);
      // A confirmation from a connection that has dropped since is worth nothing.
      if (generation !== this.subscriberGeneration) return;
      this.subscribed = true;
      if (!this.closing && !this.isAvailable && this.canServe()) await this.recover();
    } catch (err) {
      this.options.logger.warn({ err }, "could not subscribe to this node's deliveries yet");
    }
  }

  /**
   * The subscriber connection dropped (Redis closed it: a pub/sub output
   * buffer over its limit, CLIENT KILL, a restart). Messages published to
   * this node meanwhile are lost, so its streams end now rather than miss
   * them silently, exactly as when the command connection drops.
   */
  private subscriberLost(): void {
    this.subscribed = false;
    this.subscriberGeneration++;
    this.goneAway();
  }

  private async refreshLease(): Promise<void> {
    if (this.closing) return;
    if (!this.isAvailable) {
      // A connection that never closed (Redis hung, then answered again)
      // brings no "ready" event, and one that came back before this node
      // had started was not resubscribed: try to come back from here.
      if (!this.subscribed && this.subscriber.status === "ready") await this.resubscribe();
      else if (this.canServe()) await this.recover();
      return;
    }
    try {
      if ((await this.redis.set(this.leaseKey, "1", "PX", this.options.leaseMs, "XX")) === null) {
        // The lease ran out (a long pause, or Redis lost its data): other
        // nodes may have released our users already. Start over.
        this.options.logger.warn({ node: this.id }, "lease lost: ending local sessions");
        this.options.onLost(unavailable());
        await this.recover();
      }
    } catch {
      // Redis did not answer in time: as good as gone.
      this.goneAway();
    }
  }

  private async sweep(): Promise<void> {
    if (!this.isAvailable) return;
    try {
      for (const node of await this.redis.smembers("chat:nodes")) {
        if (node !== this.id && (await this.redis.chatSweep(node, "its server stopped answering")) === "ok") {
          this.options.logger.info({ node }, "released the users of a node whose lease ran out");
        }
      }
    } catch {
      // Reported by the connection's events.
    }
  }

  /** Listens to both connections; returns the last error either reported, for a failed first connect. */
  private listen(): { error?: Error } {
    const { redis, subscriber, options } = this;
    const { logger } = options;
    const seen: { error?: Error } = {};
    redis.on("error", (err: Error) => {
      seen.error = err;
      logger.debug({ err: err.message }, "Redis connection error");
    });
    subscriber.on("error", (err: Error) => {
      seen.error = err;
      logger.debug({ err: err.message }, "Redis subscriber error");
    });
    redis.on("close", () => this.goneAway());
    redis.on("ready", () => {
      if (this.started && !this.closing && !this.isAvailable && this.canServe()) void this.recover();
    });
    subscriber.on("close", () => this.subscriberLost());
    subscriber.on("ready", () => {
      if (this.started && !this.closing) void this.resubscribe();
    });
    subscriber.on("message", options.onDelivery);
    return seen;
  }

  async start(): Promise<void> {
    const seen = this.listen();
    try {
      await this.redis.connect();
      await this.subscriber.connect();
    } catch (error) {
      // ioredis rejects a failed first connect with "Connection is
      // closed."; the error event before it says why.
      throw seen.error ?? error;
    }
    await this.subscriber.subscribe(...this.channels);
    this.subscribed = true;
    await this.register();
    this.started = true;
    // The subscriber may have dropped meanwhile: then the lease refresh
    // brings the node up once it is back.
    if (this.canServe()) this.setAvailable(true);
    this.timers = [
      setInterval(() => this.refreshLease(), Math.max(100, Math.floor(this.options.leaseMs / 3))),
      setInterval(() => this.sweep(), this.options.sweepMs),
    ];
    for (const t of this.timers) t.unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.options.onLost(new ChatError("unavailable", "the server is shutting down"));
    try {
      await this.redis.del(this.leaseKey);
      await this.redis.chatReleaseNode(this.id, "its server is shutting down");
      await this.redis.srem("chat:nodes", this.id);
    } catch {
      // Redis is away: the survivors' sweep will release this node.
    }
    this.subscriber.disconnect();
    this.redis.disconnect();
  }

  async call<T>(run: () => Promise<T>): Promise<T> {
    if (!this.isAvailable) throw unavailable();
    try {
      return await run();
    } catch (error) {
      if (error instanceof ChatError) throw error;
      throw unavailable();
    }
  }
}
