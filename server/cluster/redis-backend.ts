import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { pageOf, sortChannels } from "../core/channel-page.js";
import type { ChatBackend, ChatStats } from "../core/chat-backend.js";
import { type ChatError, chatErrors } from "../core/chat-error.js";
import {
  type ChannelRef,
  type ChatSession,
  createQueueBudget,
  createSessionState,
  createWakeScheduler,
  enforceQueueBudget,
  type SessionState,
} from "../core/chat-session.js";
import { measureText } from "../core/message-text.js";
import { assertValidName } from "../core/names.js";
import { parseDelivery } from "./delivery.js";
import { createRedisNode, type RedisNode, type RedisNodeOptions, unavailable } from "./redis-node.js";

/** Settings of {@link createRedisBackend}: the node's (see redis-node.ts), and the limits. */
export interface RedisBackendOptions extends Omit<RedisNodeOptions, "onDelivery" | "onLost"> {
  queueLimit: number;
  /** Bytes that may wait for one session (see queuedEventBytes). */
  queueLimitBytes: number;
  /** Bytes that may wait in this node's queues together; past it, the largest are cut off. */
  maxQueuedBytes: number;
  maxGroupsPerUser: number;
  /** Groups that may exist at once, cluster-wide. */
  maxGroups: number;
}

/** A {@link ChatBackend} whose state lives in Redis, shared by every node; it starts and closes with its node. */
export interface RedisBackend extends ChatBackend, Pick<RedisNode, "available" | "start" | "close"> {
  /** This node's id, new at every start. */
  readonly nodeId: string;
  /** The command connection, for what else the nodes share (rate limits). */
  readonly store: Redis;
}

/**
 * Creates the cluster backend. Every change of shared state is one Lua script
 * (atomic across nodes); deliveries travel on one pub/sub channel per node,
 * which carries only what that node's users must receive. The node's link to
 * Redis (connections, lease, availability) is redis-node.ts; this is the
 * chat's commands and this node's sessions.
 */
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: a factory: the methods it returns are short closures over the state they share, which splitting it would have to pass around.
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const { maxGroupsPerUser, maxGroups, logger } = options;
  const limits = { events: options.queueLimit, bytes: options.queueLimitBytes };
  const budget = createQueueBudget(options.maxQueuedBytes);
  const schedule = createWakeScheduler();
  const sessions = new Map<string, SessionState>();

  /** Ends every local session, as when Redis is lost: clients reconnect. */
  const endLocalSessions = (reason: ChatError) => {
    for (const session of [...sessions.values()]) {
      sessions.delete(session.username);
      session.end(reason);
    }
  };

  const onDelivery = (channel: string, payload: string) => {
    const delivery = parseDelivery(payload);
    if (delivery === undefined) {
      // Only the send script publishes here; anything else is not ours.
      logger.warn({ channel, bytes: payload.length }, "ignored a malformed delivery");
      return;
    }
    for (const name of delivery.to) {
      const session = sessions.get(name);
      const overflow = session?.push(delivery.event);
      if (session !== undefined && overflow !== undefined) {
        void backend.disconnect(session, overflow);
      }
    }
    enforceQueueBudget(
      budget,
      () => sessions.values(),
      (session) => {
        void backend.disconnect(session, chatErrors.serverQueuesFull(session.username, session.pendingBytes, budget.limitBytes));
      },
    );
  };

  const node = createRedisNode({ ...options, onDelivery, onLost: endLocalSessions });
  const { redis, call } = node;

  /** Throws the error of a status the scripts answer for any group call. */
  const checkCommon = (status: string, caller: string, group: string) => {
    if (status === "ok") return;
    if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
    if (status === "not-found") throw chatErrors.noSuchGroup(group);
    if (status === "limit") throw chatErrors.tooManyGroups(caller, maxGroupsPerUser);
    if (status === "limit-total") throw chatErrors.tooManyGroupsInTotal(maxGroups);
    throw unavailable();
  };

  const backend: RedisBackend = {
    nodeId: node.id,
    store: redis,
    get available() {
      return node.available;
    },
    start: () => node.start(),
    close: () => node.close(),

    async connect(username, options) {
      assertValidName(username, "username");
      if (sessions.has(username)) throw chatErrors.usernameOnline(username);
      const status = await call(() => redis.chatConnect(node.id, username, options?.reclaim === true ? "reclaim" : ""));
      if (status === "user-exists") throw chatErrors.usernameOnline(username);
      if (status === "group-exists") throw chatErrors.usernameIsGroup(username);
      if (status !== "ok") throw unavailable();
      const session = createSessionState(username, limits, schedule, budget);
      sessions.set(username, session);
      return session;
    },

    async disconnect(session: ChatSession, reason?: unknown) {
      // Every session comes from connect above, which makes a SessionState:
      // the public type only hides what the backend alone touches.
      const state = session as SessionState;
      state.end(reason);
      if (sessions.get(state.username) !== state) return;
      sessions.delete(state.username);
      if (!node.available) return;
      try {
        await redis.chatDisconnect(node.id, session.username);
      } catch (err) {
        // Released on recovery, or by the sweep if this node dies.
        logger.warn({ err, user: session.username }, "could not release a user in Redis");
      }
    },

    async isOnline(username) {
      return (await call(() => redis.hexists("chat:users", username))) === 1;
    },

    async createGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => redis.chatCreateGroup(caller, name, maxGroupsPerUser, maxGroups));
      if (status === "group-exists") throw chatErrors.groupExists(name);
      if (status === "user-exists") throw chatErrors.groupIsUser(name);
      checkCommon(status, caller, name);
    },

    async joinGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => redis.chatJoinGroup(caller, name, maxGroupsPerUser));
      if (status === "member") throw chatErrors.alreadyMember(caller, name);
      checkCommon(status, caller, name);
    },

    async leaveGroup(caller, name) {
      assertValidName(name, "group name");
      const status = await call(() => redis.chatLeaveGroup(caller, name));
      if (status === "not-member") throw chatErrors.notAMember(caller, name);
      checkCommon(status, caller, name);
    },

    async send(caller, channel, text) {
      assertValidName(channel, "channel");
      const textBytes = measureText(text);
      const id = randomUUID();
      const sentAt = new Date();
      const status = await call(() => redis.chatSend(caller, channel, id, text, sentAt.getTime()));
      if (status === "not-found") throw chatErrors.noSuchChannel(channel);
      if (status === "not-allowed") throw chatErrors.mustJoin(caller, channel);
      if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
      // The script answers the channel's type when it sent; anything else is a script this code does not know.
      if (status !== "user" && status !== "group") throw unavailable();
      return { id, sender: caller, channel: { name: channel, type: status }, text, textBytes, sentAt };
    },

    async listChannels(page) {
      // Every name, then the page: bounded by --max-groups and the users
      // online. Sorted sets kept by the scripts would page in Redis itself;
      // not worth their cost on every connect and create at this scale.
      const [users, groups] = await call(() => Promise.all([redis.hkeys("chat:users"), redis.smembers("chat:groups")]));
      const channels: ChannelRef[] = [...users.map((name) => ({ name, type: "user" as const })), ...groups.map((name) => ({ name, type: "group" as const }))];
      return pageOf(sortChannels(channels), page);
    },

    async stats(): Promise<ChatStats> {
      const [users, groups] = await call(() => Promise.all([redis.hlen("chat:users"), redis.scard("chat:groups")]));
      return { users, groups };
    },
  };
  return backend;
}
