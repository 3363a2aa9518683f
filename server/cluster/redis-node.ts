import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ChatError } from "../core/chat-error.js";
import { type ChannelSubscriptions, createChannelSubscriptions } from "./channel-subscriptions.js";
import { createLeaseKeeper, type LeaseKeeper } from "./lease-keeper.js";
import { directoryKeys } from "./redis-keys.js";
import { type ChatStore, createRedisLink, type RedisLink, type RedisTarget } from "./redis-link.js";

/** Settings of {@link createRedisNode}. */
export interface RedisNodeOptions {
  /** One Redis, or a Redis Cluster. */
  target: RedisTarget;
  /** How long this node's lease lives without a refresh; it is refreshed four times as often. */
  leaseMs: number;
  /** How often this node looks for nodes whose lease ran out. */
  sweepMs: number;
  logger: Logger;
  /** Told when Redis becomes reachable (true) or unreachable (false). */
  onAvailability?: (available: boolean) => void;
  /** Shard channels every node listens to while it serves (presence changes). */
  broadcastChannels?: readonly string[];
  /** Shard channels of this node's own that it listens to while it serves, from its id. */
  ownChannels?: (id: string) => readonly string[];
  /** A message on one of this node's shard channels. */
  onMessage(channel: string, payload: string): void;
  /** This node's sessions must end: Redis was lost, the lease ran out, or the node is closing. */
  onLost(reason: ChatError): void;
  /** Releases every user a node held (its own after an outage, or a dead one's): they leave their groups and their names are free. */
  releaseUsers(node: string, users: readonly string[], detail: string): Promise<void>;
}

/** One node's place in the cluster: its link to Redis, its lease, its subscriptions. */
export interface RedisNode {
  /** This node's id, new at every start. */
  readonly id: string;
  /** Whether Redis is reachable, this node registered and its subscriptions are confirmed. */
  readonly available: boolean;
  /** The command connection, with the chat's scripts. */
  readonly store: ChatStore;
  /** The node's shard-channel subscriptions. */
  readonly subscriptions: ChannelSubscriptions;
  /** Connects, subscribes and registers; rejects when Redis cannot be reached. */
  start(): Promise<void>;
  /** Ends this node's sessions, releases its users and leaves Redis. */
  close(): Promise<void>;
  /** Runs a command, turning connection failures into UNAVAILABLE; ChatErrors pass. */
  call<T>(run: () => Promise<T>): Promise<T>;
}

/** The error of every call made while Redis is away. */
export const unavailable = () => new ChatError("unavailable", "the chat's shared store (Redis) is unreachable; try again");

/** How long one node may sweep a dead one before another may take over. */
const sweepLockMs = 10_000;

/** How long a node's JavaScript may be stuck before its lease is let go: far past any pause of a busy node. */
const hangMs = (leaseMs: number) => Math.max(30_000, 10 * leaseMs);

/**
 * Creates a node's link to the cluster. Nodes hold leases that expire unless
 * refreshed (from a thread of their own: see lease-keeper.ts); survivors
 * sweep the users of a node whose lease ran out. While
 * Redis is unreachable (the command connection or any subscription dropped)
 * the node serves nothing (onLost ends its sessions), until Redis answers
 * again, its broadcast channels are subscribed, and it has released what it
 * held before.
 */
export function createRedisNode(options: RedisNodeOptions): RedisNode {
  return new RedisNodeImpl(options);
}

/** The one RedisNode: a small state machine (started, available, closing) over its link. */
class RedisNodeImpl implements RedisNode {
  readonly id = randomUUID();
  readonly store: ChatStore;
  readonly subscriptions: ChannelSubscriptions;
  private readonly link: RedisLink;
  private readonly leaseKey = directoryKeys.lease(this.id);
  private isAvailable = false;
  private closing = false;
  private started = false;
  private recovering = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly keeper: LeaseKeeper;

  constructor(private readonly options: RedisNodeOptions) {
    this.keeper = createLeaseKeeper({
      target: options.target,
      key: this.leaseKey,
      leaseMs: options.leaseMs,
      hangMs: hangMs(options.leaseMs),
      onLost: () => void this.leaseLost(),
    });
    this.link = createRedisLink({
      target: options.target,
      logger: options.logger,
      onMessage: options.onMessage,
      onLost: () => this.goneAway(),
      onReady: () => {
        if (this.started && !this.closing && !this.isAvailable) void this.recover();
      },
    });
    this.store = this.link.store;
    this.subscriptions = createChannelSubscriptions(this.link);
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
    await this.store.set(this.leaseKey, "1", "PX", this.options.leaseMs);
    await this.store.sadd(directoryKeys.nodes, this.id);
  }

  /** Subscribes the channels every node listens to, and waits for the confirmation. */
  private async subscribeBroadcast(): Promise<void> {
    const channels = [...(this.options.broadcastChannels ?? []), ...(this.options.ownChannels?.(this.id) ?? [])];
    await Promise.all(channels.map((channel) => this.subscriptions.acquire(channel)));
  }

  /** Releases the users this node is listed with (before an outage, or at shutdown). */
  private async releaseOwn(detail: string): Promise<void> {
    const users = await this.store.smembers(directoryKeys.nodeUsers(this.id));
    await this.options.releaseUsers(this.id, users, detail);
  }

  /**
   * After an outage: subscribe again, release whatever this node held
   * before (its users may still be listed if Redis kept its data), then
   * register again.
   */
  private async recover(): Promise<void> {
    if (this.recovering || !this.link.ready) return;
    this.recovering = true;
    try {
      this.subscriptions.reset();
      await this.subscribeBroadcast();
      await this.releaseOwn("its server lost its link to the chat's shared store");
      await this.register();
      // A connection may have dropped meanwhile: serve only with all of them.
      if (this.link.ready && !this.closing) this.setAvailable(true);
    } catch (err) {
      this.options.logger.warn({ err }, "could not register with Redis yet");
    } finally {
      this.recovering = false;
    }
  }

  /** Marks Redis unreachable: health turns NOT_SERVING and every stream ends, since what was published meanwhile may be lost. */
  private goneAway(): void {
    if (this.closing || !this.isAvailable) return;
    this.setAvailable(false);
    this.options.onLost(unavailable());
  }

  /**
   * The lease ran out (a pause longer than the lease, or Redis lost its
   * data): other nodes may have released our users already. Start over.
   */
  private async leaseLost(): Promise<void> {
    if (this.closing || !this.isAvailable) return;
    this.options.logger.warn({ node: this.id }, "lease lost: ending local sessions");
    this.setAvailable(false);
    this.options.onLost(unavailable());
    await this.recover();
  }

  /**
   * Refreshes the lease from this thread too (the keeper's thread keeps it
   * while this one is busy, and this one while the keeper's connection is
   * not up yet), checks that Redis answers in time, and comes back after an
   * outage.
   */
  private async watch(): Promise<void> {
    if (this.closing) return;
    if (!this.isAvailable) {
      // A connection that never closed (Redis hung, then answered again)
      // brings no "ready" event: try to come back from here.
      await this.recover();
      return;
    }
    try {
      if ((await this.store.set(this.leaseKey, "1", "PX", this.options.leaseMs, "XX")) === null) await this.leaseLost();
    } catch {
      // Redis did not answer in time: as good as gone.
      this.goneAway();
    }
  }

  private async sweep(): Promise<void> {
    if (!this.isAvailable) return;
    try {
      for (const node of await this.store.smembers(directoryKeys.nodes)) {
        if (node === this.id) continue;
        const [status, ...users] = await this.store.chatSweep(directoryKeys.nodes, node, this.id, sweepLockMs);
        if (status !== "dead") continue;
        await this.options.releaseUsers(node, users, "its server stopped answering");
        this.options.logger.info({ node, users: users.length }, "released the users of a node whose lease ran out");
      }
    } catch (err) {
      this.options.logger.debug({ err }, "sweep interrupted");
    }
  }

  async start(): Promise<void> {
    await this.link.connect();
    await this.subscribeBroadcast();
    await this.register();
    this.started = true;
    // A connection may have dropped meanwhile: then the lease refresh
    // brings the node up once it is back.
    if (this.link.ready) this.setAvailable(true);
    this.timers = [setInterval(() => this.watch(), Math.max(100, Math.floor(this.options.leaseMs / 4))), setInterval(() => this.sweep(), this.options.sweepMs)];
    for (const t of this.timers) t.unref();
    this.keeper.start();
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    await this.keeper.stop();
    this.options.onLost(new ChatError("unavailable", "the server is shutting down"));
    try {
      // A node that never started holds nothing to release.
      if (this.started) {
        await this.store.del(this.leaseKey);
        await this.releaseOwn("its server is shutting down");
        await this.store.srem(directoryKeys.nodes, this.id);
      }
    } catch {
      // Redis is away: the survivors' sweep will release this node.
    }
    this.link.disconnect();
  }

  async call<T>(run: () => Promise<T>): Promise<T> {
    if (!this.isAvailable) throw unavailable();
    try {
      return await run();
    } catch (error) {
      if (error instanceof ChatError) throw error;
      this.options.logger.debug({ err: error }, "a Redis command failed");
      throw unavailable();
    }
  }
}
