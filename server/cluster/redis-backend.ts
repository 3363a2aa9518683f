import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ChatBackend, ChatStats } from "../core/chat-backend.js";
import { ChatError, chatErrors } from "../core/chat-error.js";
import { createQueueBudget, createSessionState, createWakeScheduler, enforceQueueBudget, type ChannelRef, type ChatEvent, type ChatSession, type SessionState } from "../core/chat-session.js";
import { assertValidName, measureText } from "../core/names.js";
import { pageOf, sortChannels } from "../core/channel-page.js";
import {
  connectScript,
  createGroupScript,
  disconnectScript,
  joinGroupScript,
  leaveGroupScript,
  releaseNodeScript,
  sendScript,
  sweepScript,
} from "./redis-scripts.js";

/** Settings of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  /** A redis:// URL. */
  url: string;
  queueLimit: number;
  /** Bytes that may wait for one session (see queuedEventBytes). */
  queueLimitBytes: number;
  /** Bytes that may wait in this node's queues together; past it, the largest are cut off. */
  maxQueuedBytes: number;
  maxGroupsPerUser: number;
  /** Groups that may exist at once, cluster-wide. */
  maxGroups: number;
  /** How long this node's lease lives without a refresh; it is refreshed three times as often. */
  leaseMs: number;
  /** How often this node looks for nodes whose lease ran out. */
  sweepMs: number;
  logger: Logger;
  /** Told when Redis becomes reachable (true) or unreachable (false). */
  onAvailability?: (available: boolean) => void;
}

/** A {@link ChatBackend} whose state lives in Redis, shared by every node. */
export interface RedisBackend extends ChatBackend {
  /** This node's id, new at every start. */
  readonly nodeId: string;
  /** Whether Redis is reachable and this node registered. */
  readonly available: boolean;
  /** Connects to Redis and registers this node; rejects when Redis cannot be reached. */
  start(): Promise<void>;
  /** Ends this node's sessions, releases its users and leaves Redis. */
  close(): Promise<void>;
}

interface DeliveredMessage {
  id: string;
  sender: string;
  channel: string;
  type: ChannelRef["type"];
  text: string;
  at: number;
  to: string[];
}

interface ChatCommands {
  chatConnect(node: string, user: string): Promise<string>;
  chatDisconnect(node: string, user: string): Promise<string>;
  chatSweep(node: string): Promise<string>;
  chatReleaseNode(node: string): Promise<string>;
  chatCreateGroup(user: string, group: string, max: number, maxTotal: number): Promise<string>;
  chatJoinGroup(user: string, group: string, max: number): Promise<string>;
  chatLeaveGroup(user: string, group: string): Promise<string>;
  chatSend(user: string, channel: string, id: string, text: string, at: number): Promise<string>;
}

const unavailable = () => new ChatError("unavailable", "the chat's shared store (Redis) is unreachable; try again");

/**
 * Creates the cluster backend. Every change of shared state is one Lua script
 * (atomic across nodes); deliveries travel on one pub/sub channel per node,
 * which carries only what that node's users must receive. Nodes hold leases
 * that expire unless refreshed; survivors sweep the users of a node whose
 * lease ran out. While Redis is unreachable the node serves nothing: its
 * streams end with UNAVAILABLE and new sessions are refused, until Redis
 * answers again and the node has released what it held before.
 */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const { maxGroupsPerUser, maxGroups, leaseMs, sweepMs, logger } = options;
  const limits = { events: options.queueLimit, bytes: options.queueLimitBytes };
  const budget = createQueueBudget(options.maxQueuedBytes);
  const nodeId = randomUUID();
  const schedule = createWakeScheduler();
  const sessions = new Map<string, SessionState>();
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
  const redis = new Redis(options.url, redisOptions);
  // The subscriber resubscribes by itself (below) rather than through
  // ioredis's autoResubscribe, so that the node serves again only once Redis
  // has confirmed the subscription.
  const subscriber = new Redis(options.url, { ...redisOptions, enableOfflineQueue: true, autoResubscribe: false });
  const commands = redis as unknown as Redis & ChatCommands;
  const scripts: [keyof ChatCommands, string][] = [
    ["chatConnect", connectScript],
    ["chatDisconnect", disconnectScript],
    ["chatSweep", sweepScript],
    ["chatReleaseNode", releaseNodeScript],
    ["chatCreateGroup", createGroupScript],
    ["chatJoinGroup", joinGroupScript],
    ["chatLeaveGroup", leaveGroupScript],
    ["chatSend", sendScript],
  ];
  for (const [name, lua] of scripts) redis.defineCommand(name, { numberOfKeys: 0, lua });

  let available = false;
  let closing = false;
  let started = false;
  // Whether Redis has confirmed this node's delivery subscription on the
  // current subscriber connection: without it, messages for this node's users
  // would be published to nobody.
  let subscribed = false;
  // Counts the subscriber's connections, so that a late confirmation from a
  // dropped one is not taken for the current one's.
  let subscriberGeneration = 0;
  let timers: NodeJS.Timeout[] = [];
  const deliverChannel = `chat:deliver:${nodeId}`;
  const leaseKey = `chat:lease:${nodeId}`;

  const setAvailable = (value: boolean) => {
    if (available === value) return;
    available = value;
    logger.info({ node: nodeId }, value ? "Redis reachable: serving" : "Redis unreachable: not serving");
    options.onAvailability?.(value);
  };

  /** Ends every local session, as when Redis is lost: clients reconnect. */
  const endLocalSessions = (reason: ChatError) => {
    for (const session of [...sessions.values()]) {
      sessions.delete(session.username);
      session.end(reason);
    }
  };

  /** Registers this node: lease, membership of the node set. */
  const register = async () => {
    await redis.set(leaseKey, "1", "PX", leaseMs);
    await redis.sadd("chat:nodes", nodeId);
  };

  /**
   * After an outage: release whatever this node held before (its users may
   * still be listed if Redis kept its data), then register again.
   */
  const recover = async () => {
    try {
      await commands.chatReleaseNode(nodeId);
      await register();
      // Either connection may have dropped meanwhile: serve only with both.
      if (canServe()) setAvailable(true);
    } catch (err) {
      logger.warn({ err }, "could not register with Redis yet");
    }
  };

  /** Marks Redis unreachable: health turns NOT_SERVING and every stream ends. */
  const goneAway = () => {
    if (closing || !available) return;
    setAvailable(false);
    endLocalSessions(unavailable());
  };

  /** Both connections are up and the subscription confirmed: the node may serve. */
  const canServe = () => redis.status === "ready" && subscribed;

  /**
   * The subscriber connection is back: subscribe again, then serve again if
   * the command connection is up too.
   */
  const resubscribe = async () => {
    const generation = subscriberGeneration;
    try {
      await subscriber.subscribe(deliverChannel);
      // A confirmation from a connection that has dropped since is worth nothing.
      if (generation !== subscriberGeneration) return;
      subscribed = true;
      if (!closing && !available && canServe()) await recover();
    } catch (err) {
      logger.warn({ err }, "could not subscribe to this node's deliveries yet");
    }
  };

  /**
   * The subscriber connection dropped (Redis closed it: a pub/sub output
   * buffer over its limit, CLIENT KILL, a restart). Messages published to
   * this node meanwhile are lost, so its streams end now rather than miss
   * them silently, exactly as when the command connection drops.
   */
  const subscriberLost = () => {
    subscribed = false;
    subscriberGeneration++;
    goneAway();
  };

  const refreshLease = async () => {
    if (closing) return;
    if (!available) {
      // A connection that never closed (Redis hung, then answered again)
      // brings no "ready" event, and one that came back before this node
      // had started was not resubscribed: try to come back from here.
      if (!subscribed && subscriber.status === "ready") await resubscribe();
      else if (canServe()) await recover();
      return;
    }
    try {
      const kept = await redis.set(leaseKey, "1", "PX", leaseMs, "XX");
      if (kept === null) {
        // The lease ran out (a long pause, or Redis lost its data): other
        // nodes may have released our users already. Start over.
        logger.warn({ node: nodeId }, "lease lost: ending local sessions");
        endLocalSessions(unavailable());
        await recover();
      }
    } catch {
      // Redis did not answer in time: as good as gone.
      goneAway();
    }
  };

  const sweep = async () => {
    if (!available) return;
    try {
      for (const node of await redis.smembers("chat:nodes")) {
        if (node !== nodeId && (await commands.chatSweep(node)) === "ok") {
          logger.info({ node }, "released the users of a node whose lease ran out");
        }
      }
    } catch {
      // Reported by the connection's events.
    }
  };

  const onDelivery = (channel: string, payload: string) => {
    const message = parseDelivery(payload);
    if (message === undefined) {
      // Only the send script publishes here; anything else is not ours.
      logger.warn({ channel, bytes: payload.length }, "ignored a malformed delivery");
      return;
    }
    const event: ChatEvent = {
      id: message.id,
      sender: message.sender,
      channel: { name: message.channel, type: message.type },
      text: message.text,
      textBytes: Buffer.byteLength(message.text, "utf8"),
      sentAt: new Date(message.at),
      holders: 0,
    };
    for (const name of message.to) {
      const session = sessions.get(name);
      const overflow = session?.push(event);
      if (session !== undefined && overflow !== undefined) {
        void backend.disconnect(session, overflow);
      }
    }
    enforceQueueBudget(budget, () => sessions.values(), (session) => {
      void backend.disconnect(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes));
    });
  };

  /** Runs a command, turning connection failures into UNAVAILABLE. */
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    if (!available) throw unavailable();
    try {
      return await run();
    } catch (error) {
      if (error instanceof ChatError) throw error;
      throw unavailable();
    }
  };

  const backend: RedisBackend = {
    nodeId,
    get available() {
      return available;
    },

    async start() {
      // ioredis rejects a failed first connect with "Connection is closed.";
      // the error event before it says why.
      let lastError: Error | undefined;
      redis.on("error", (err: Error) => {
        lastError = err;
        logger.debug({ err: err.message }, "Redis connection error");
      });
      subscriber.on("error", (err: Error) => {
        lastError = err;
        logger.debug({ err: err.message }, "Redis subscriber error");
      });
      redis.on("close", goneAway);
      redis.on("ready", () => {
        if (started && !closing && !available && canServe()) void recover();
      });
      subscriber.on("close", subscriberLost);
      subscriber.on("ready", () => {
        if (started && !closing) void resubscribe();
      });
      subscriber.on("message", onDelivery);
      try {
        await redis.connect();
        await subscriber.connect();
      } catch (error) {
        throw lastError ?? error;
      }
      await subscriber.subscribe(deliverChannel);
      subscribed = true;
      await register();
      started = true;
      // The subscriber may have dropped meanwhile: then the lease refresh
      // brings the node up once it is back.
      if (canServe()) setAvailable(true);
      timers = [setInterval(refreshLease, Math.max(100, Math.floor(leaseMs / 3))), setInterval(sweep, sweepMs)];
      for (const t of timers) t.unref();
    },

    async close() {
      closing = true;
      for (const t of timers) clearInterval(t);
      endLocalSessions(new ChatError("unavailable", "the server is shutting down"));
      try {
        await redis.del(leaseKey);
        await commands.chatReleaseNode(nodeId);
        await redis.srem("chat:nodes", nodeId);
      } catch {
        // Redis is away: the survivors' sweep will release this node.
      }
      subscriber.disconnect();
      redis.disconnect();
    },

    async connect(username) {
      assertValidName(username, "username");
      if (sessions.has(username)) throw chatErrors.usernameOnline(username);
      const status = await call(() => commands.chatConnect(nodeId, username));
      if (status === "user-exists") throw chatErrors.usernameOnline(username);
      if (status === "group-exists") throw chatErrors.usernameIsGroup(username);
      if (status !== "ok") throw unavailable();
      const session = createSessionState(username, limits, schedule, budget);
      sessions.set(username, session);
      return session;
    },

    async disconnect(session: ChatSession, reason?: unknown) {
      const state = session as SessionState;
      state.end(reason);
      if (sessions.get(state.username) !== state) return;
      sessions.delete(state.username);
      if (!available) return;
      try {
        await commands.chatDisconnect(nodeId, state.username);
      } catch (err) {
        // Released on recovery, or by the sweep if this node dies.
        logger.warn({ err, user: state.username }, "could not release a user in Redis");
      }
    },

    async isOnline(username) {
      return (await call(() => redis.hexists("chat:users", username))) === 1;
    },

    async createGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => commands.chatCreateGroup(caller, name, maxGroupsPerUser, maxGroups));
      if (status === "group-exists") throw chatErrors.groupExists(name);
      if (status === "user-exists") throw chatErrors.groupIsUser(name);
      checkCommon(status, caller, name);
    },

    async joinGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => commands.chatJoinGroup(caller, name, maxGroupsPerUser));
      if (status === "member") throw chatErrors.alreadyMember(caller, name);
      checkCommon(status, caller, name);
    },

    async leaveGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => commands.chatLeaveGroup(caller, name));
      if (status === "not-member") throw chatErrors.notAMember(caller, name);
      checkCommon(status, caller, name);
    },

    async send(caller, channel, text) {
      assertValidName(channel, "channel");
      const textBytes = measureText(text);
      const id = randomUUID();
      const sentAt = new Date();
      const status = await call(() => commands.chatSend(caller, channel, id, text, sentAt.getTime()));
      if (status === "not-found") throw chatErrors.noSuchChannel(channel);
      if (status === "not-allowed") throw chatErrors.mustJoin(caller, channel);
      if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
      return { id, sender: caller, channel: { name: channel, type: status as ChannelRef["type"] }, text, textBytes, sentAt };
    },

    async listChannels(page) {
      // Every name, then the page: bounded by --max-groups and the users
      // online. Sorted sets kept by the scripts would page in Redis itself;
      // not worth their cost on every connect and create at this scale.
      const [users, groups] = await call(() => Promise.all([redis.hkeys("chat:users"), redis.smembers("chat:groups")]));
      const channels: ChannelRef[] = [
        ...users.map((name) => ({ name, type: "user" as const })),
        ...groups.map((name) => ({ name, type: "group" as const })),
      ];
      return pageOf(sortChannels(channels), page);
    },

    async stats(): Promise<ChatStats> {
      const [users, groups] = await call(() => Promise.all([redis.hlen("chat:users"), redis.scard("chat:groups")]));
      return { users, groups };
    },
  };

  function checkCommon(status: string, caller: string, group: string): void {
    if (status === "ok") return;
    if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
    if (status === "not-found") throw chatErrors.noSuchGroup(group);
    if (status === "limit") throw chatErrors.tooManyGroups(caller, maxGroupsPerUser);
    if (status === "limit-total") throw chatErrors.tooManyGroupsInTotal(maxGroups);
    throw unavailable();
  }

  return backend;
}

/** Reads a delivery published by the send script; undefined for anything else. */
function parseDelivery(payload: string): DeliveredMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const valid =
    typeof m.id === "string" &&
    typeof m.sender === "string" &&
    typeof m.channel === "string" &&
    (m.type === "user" || m.type === "group") &&
    typeof m.text === "string" &&
    typeof m.at === "number" &&
    Array.isArray(m.to) &&
    m.to.every((name) => typeof name === "string");
  // Every field was checked above.
  return valid ? (m as unknown as DeliveredMessage) : undefined;
}
