import { createHash, randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { type BackendSession, createBackendSession, type QueueLimits } from "../core/backend-session.js";
import type { ChannelPage } from "../core/channel-page.js";
import { pageOf, pageOfNames, sortChannels } from "../core/channel-page.js";
import type { ChatBackend, ChatStats, ConnectOptions, Resumed, ResumeRequest } from "../core/chat-backend.js";
import { chatErrors } from "../core/chat-error.js";
import type { ChatSession } from "../core/chat-session.js";
import { measureText } from "../core/measure-text.js";
import { leaveReasonOf } from "../core/membership-event.js";
import { assertValidName } from "../core/names.js";
import { createQueueBudget, type QueueBudget } from "../core/queue-budget.js";
import { defaultResumeHistory, type HistoryLimits, resumeSession } from "../core/resume-session.js";
import type { ChannelRef, ChatEvent } from "../core/session-event.js";
import { createWakeScheduler } from "../core/wake-scheduler.js";
import { parseDelivery, parsePresence } from "./delivery.js";
import { createNodeSessions, type NodeSessions } from "./node-sessions.js";
import { createRedisNode, type RedisNode, type RedisNodeOptions, unavailable } from "./redis-node.js";

/** Settings of {@link createRedisBackend}: the node's (see redis-node.ts), and the limits. */
export interface RedisBackendOptions extends Omit<RedisNodeOptions, "onDelivery" | "onLost" | "broadcastChannels"> {
  queueLimit: number;
  /** Bytes that may wait for one session (see queuedEventBytes). */
  queueLimitBytes: number;
  /** Bytes that may wait in this node's queues together; past it, the largest are cut off. */
  maxQueuedBytes: number;
  maxGroupsPerUser: number;
  /** Groups that may exist at once, cluster-wide. */
  maxGroups: number;
  /** How long a session whose stream dropped is held for a resume. Default 0: it ends at once. */
  resumeGraceMs?: number;
  /** What a resumable session keeps of what it delivered. Default 256 events and 256 KiB. */
  resumeHistory?: HistoryLimits;
  /** How often presence changes are handed to this node's watchers, coalesced; 0 switches presence off. Default 250 ms. */
  presenceIntervalMs?: number;
}

/** A {@link ChatBackend} whose state lives in Redis, shared by every node; it starts and closes with its node. */
export interface RedisBackend extends ChatBackend, Pick<RedisNode, "available" | "start" | "close"> {
  /** This node's id, new at every start. */
  readonly nodeId: string;
  /** The command connection, for what else the nodes share (rate limits). */
  readonly store: Redis;
}

/** The pub/sub channel of presence changes, which every node with presence on listens to. */
const presenceChannel = "chat:presence";

/** What Redis keeps of a resume token: its SHA-256, so that the store never holds the secret. */
function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** The hash of a session's resume token, or "" for a session that cannot be resumed. */
function tokenHashOf(session: ChatSession): string {
  return session.resumeToken === undefined ? "" : hashToken(session.resumeToken);
}

/** "1" for a yes, as the scripts take flags. */
const flag = (on: boolean | undefined) => (on === true ? "1" : "");

/**
 * Creates the cluster backend. Every change of shared state is one Lua script
 * (atomic across nodes); deliveries travel on one pub/sub channel per node,
 * which carries only what that node's users must receive, and presence
 * changes on one channel for all. The node's link to Redis (connections,
 * lease, availability) is redis-node.ts, its sessions' memory
 * node-sessions.ts; this is the chat's commands.
 *
 * Membership events are published by the very script that changes the
 * membership, to the nodes of the members that asked for them, so they
 * reach every member in the one order Redis ran the scripts in, the send
 * script's messages included. A session is resumed on the node that holds
 * it; presented to another node, its token takes the name over there for a
 * fresh session (resumed false): the old session leaves its groups and ends,
 * its queue dropped, so nothing is delivered twice.
 */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  return new RedisBackendImpl(options);
}

/** Throws the error of the connect script's status. */
function checkConnect(status: string, username: string): void {
  if (status === "ok") return;
  if (status === "user-exists") throw chatErrors.usernameOnline(username);
  if (status === "group-exists") throw chatErrors.usernameIsGroup(username);
  // The grace of the node that holds the session, which may differ from this one's.
  if (status.startsWith("held:")) throw chatErrors.usernameHeld(username, Number(status.slice("held:".length)));
  throw unavailable();
}

/** The one RedisBackend: this node's link to Redis, its sessions, and the settings its commands apply. */
class RedisBackendImpl implements RedisBackend {
  readonly nodeId: string;
  readonly store: Redis;
  readonly resumeGraceMs: number;
  readonly presence: boolean;
  private readonly node: RedisNode;
  private readonly local: NodeSessions;
  private readonly redis: RedisNode["redis"];
  private readonly logger: Logger;
  private readonly maxGroupsPerUser: number;
  private readonly maxGroups: number;
  private readonly limits: QueueLimits;
  private readonly budget: QueueBudget;
  private readonly schedule = createWakeScheduler();
  private readonly history: HistoryLimits | undefined;

  constructor(options: RedisBackendOptions) {
    this.maxGroupsPerUser = options.maxGroupsPerUser;
    this.maxGroups = options.maxGroups;
    this.logger = options.logger;
    this.limits = { events: options.queueLimit, bytes: options.queueLimitBytes };
    this.budget = createQueueBudget(options.maxQueuedBytes);
    this.resumeGraceMs = options.resumeGraceMs ?? 0;
    this.history = this.resumeGraceMs > 0 ? (options.resumeHistory ?? defaultResumeHistory) : undefined;
    this.local = createNodeSessions({
      budget: this.budget,
      presenceIntervalMs: options.presenceIntervalMs ?? 250,
      cutOff: (session, reason) => void this.disconnect(session, reason),
    });
    this.presence = this.local.presence;
    this.node = createRedisNode({
      ...options,
      broadcastChannels: this.local.presence ? [presenceChannel] : [],
      onDelivery: (channel, payload) => this.onDelivery(channel, payload),
      onLost: (reason) => this.local.endAll(reason),
    });
    this.nodeId = this.node.id;
    this.redis = this.node.redis;
    this.store = this.redis;
  }

  get available(): boolean {
    return this.node.available;
  }

  start(): Promise<void> {
    return this.node.start();
  }

  async close(): Promise<void> {
    this.local.close();
    await this.node.close();
  }

  /** Runs a command through the node: UNAVAILABLE while Redis is away. */
  private call<T>(run: () => Promise<T>): Promise<T> {
    return this.node.call(run);
  }

  private onDelivery(channel: string, payload: string): void {
    if (channel === presenceChannel) {
      const changes = parsePresence(payload);
      if (changes === undefined) this.logger.warn({ channel, bytes: payload.length }, "ignored a malformed presence change");
      else this.local.presenceChanged(changes);
      return;
    }
    const delivery = parseDelivery(payload);
    if (delivery === undefined) {
      // Only the scripts publish here; anything else is not ours.
      this.logger.warn({ channel, bytes: payload.length }, "ignored a malformed delivery");
    } else if (delivery.kind === "event") {
      this.local.deliver(delivery.to, delivery.event, delivery.membership);
    } else if (delivery.kind === "start") {
      // Only the session of that token: a mark that comes after its session ended is not the next one's.
      const session = this.local.get(delivery.user);
      if (session !== undefined && tokenHashOf(session) === delivery.tokenHash) this.local.started(session);
    } else {
      this.endTakenOver(delivery.user, delivery.tokenHash);
    }
  }

  /**
   * Another node took this session over with its resume token, and owns the
   * name in Redis now: end the session here, touching nothing in Redis.
   * Only the session of that token ends, should the name have come back.
   */
  private endTakenOver(username: string, tokenHash: string): void {
    const session = this.local.get(username);
    if (session === undefined || tokenHashOf(session) !== tokenHash) return;
    this.local.remove(session);
    session.end(chatErrors.resumedElsewhere(username));
  }

  /** Throws the error of a status the scripts answer for any group call. */
  private checkCommon(status: string, caller: string, group: string): void {
    if (status === "ok") return;
    if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
    if (status === "not-found") throw chatErrors.noSuchGroup(group);
    if (status === "limit") throw chatErrors.tooManyGroups(caller, this.maxGroupsPerUser);
    if (status === "limit-total") throw chatErrors.tooManyGroupsInTotal(this.maxGroups);
    throw unavailable();
  }

  /**
   * Makes a session and registers it on this node before Redis hears of
   * it, so that a delivery published right after the script finds it, then
   * runs the script that registers it in Redis; a session whose script
   * failed is dropped.
   */
  private async openSession(username: string, optIns: ConnectOptions, register: (session: BackendSession) => Promise<void>): Promise<BackendSession> {
    const { local, history } = this;
    const session = createBackendSession(username, this.limits, this.schedule, this.budget, history === undefined ? {} : { history });
    local.setOptIns(session, optIns);
    local.add(session);
    try {
      await register(session);
    } catch (error) {
      local.remove(session);
      session.end(error);
      throw error;
    }
    return session;
  }

  /** Resumes a session this node holds, as the in-memory backend does. */
  private async resumeHere(session: BackendSession, request: ResumeRequest): Promise<Resumed> {
    const { local, node, redis } = this;
    const { username } = session;
    const { lost, stream } = resumeSession(session, request);
    local.unhold(session);
    // Set here first: a membership event Redis sent under the old choice is filtered by this one.
    local.setOptIns(session, request);
    let status = "ok";
    try {
      status = await this.call(() => redis.chatResumed(node.id, username, flag(session.optIns.membership)));
    } catch (err) {
      // The session is resumed; Redis may still call its name held until it ends.
      this.logger.warn({ err, user: username }, "could not mark a resumed user in Redis");
    }
    if (status === "not-held") {
      // Another node took the name over (its message to end this session is on its way): this session is done.
      local.remove(session);
      session.end(chatErrors.resumedElsewhere(username));
      throw chatErrors.noSessionToResume(username);
    }
    return { session, resumed: true, lost, stream };
  }

  /**
   * Takes over, with its resume token, a session that another node holds:
   * the old session leaves its groups and ends there, its queue dropped,
   * and the user gets a fresh session here (resumed false).
   */
  private async takeOver(username: string, request: ResumeRequest): Promise<Resumed> {
    const { node, redis } = this;
    if (!Number.isSafeInteger(request.received) || request.received < 0) throw chatErrors.receivedTooMany(username, request.received);
    const session = await this.openSession(username, request, async (fresh) => {
      const status = await this.call(() =>
        redis.chatTakeover(
          node.id,
          username,
          hashToken(request.token),
          tokenHashOf(fresh),
          flag(fresh.optIns.membership),
          "its client came back on another server",
        ),
      );
      if (status === "no-session") throw chatErrors.noSessionToResume(username);
      if (status !== "ok") throw unavailable();
    });
    return { session, resumed: false, lost: 0, stream: session.attachStream() };
  }

  async connect(username: string, options: ConnectOptions = {}): Promise<ChatSession> {
    const { local, node, redis } = this;
    assertValidName(username, "username");
    const existing = local.get(username);
    if (existing !== undefined) throw local.isHeld(existing) ? chatErrors.usernameHeld(username, this.resumeGraceMs) : chatErrors.usernameOnline(username);
    return this.openSession(username, options, async (session) => {
      const reclaim = options.reclaim === true ? "reclaim" : "";
      const status = await this.call(() => redis.chatConnect(node.id, username, reclaim, tokenHashOf(session), flag(session.optIns.membership)));
      checkConnect(status, username);
    });
  }

  async resume(username: string, request: ResumeRequest): Promise<Resumed> {
    assertValidName(username, "username");
    const session = this.local.get(username);
    return session === undefined ? this.takeOver(username, request) : this.resumeHere(session, request);
  }

  async hold(chatSession: ChatSession, reason: unknown): Promise<void> {
    const { resumeGraceMs } = this;
    // Every session comes from openSession, which makes a BackendSession:
    // the public type only hides what the backend alone touches.
    const session = chatSession as BackendSession;
    if (resumeGraceMs === 0 || session.signal.aborted || this.local.get(session.username) !== session) return this.disconnect(session, reason);
    this.local.hold(session, resumeGraceMs, () => void this.disconnect(session, chatErrors.resumeGraceOver(session.username, resumeGraceMs, reason)));
    try {
      await this.call(() => this.redis.chatHold(this.node.id, session.username, resumeGraceMs));
    } catch (err) {
      // Held all the same; another node's connect is told the name is online rather than held.
      this.logger.warn({ err, user: session.username }, "could not mark a held user in Redis");
    }
  }

  async disconnect(chatSession: ChatSession, reason?: unknown): Promise<void> {
    // See hold: a BackendSession behind the public type.
    const session = chatSession as BackendSession;
    session.end(reason);
    if (!this.local.remove(session) || !this.node.available) return;
    const [why, detail] = leaveReasonOf(reason);
    try {
      await this.redis.chatDisconnect(this.node.id, session.username, why, detail);
    } catch (err) {
      // Released on recovery, or by the sweep if this node dies.
      this.logger.warn({ err, user: session.username }, "could not release a user in Redis");
    }
  }

  async isOnline(username: string): Promise<boolean> {
    return (await this.call(() => this.redis.hexists("chat:users", username))) === 1;
  }

  async createGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    const status = await this.call(() => this.redis.chatCreateGroup(caller, name, this.maxGroupsPerUser, this.maxGroups));
    if (status === "group-exists") throw chatErrors.groupExists(name);
    if (status === "user-exists") throw chatErrors.groupIsUser(name);
    this.checkCommon(status, caller, name);
  }

  async joinGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    const status = await this.call(() => this.redis.chatJoinGroup(caller, name, this.maxGroupsPerUser));
    if (status === "member") throw chatErrors.alreadyMember(caller, name);
    this.checkCommon(status, caller, name);
  }

  async leaveGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    const status = await this.call(() => this.redis.chatLeaveGroup(caller, name));
    if (status === "not-member") throw chatErrors.notAMember(caller, name);
    this.checkCommon(status, caller, name);
  }

  async send(caller: string, channel: string, text: string): Promise<ChatEvent> {
    assertValidName(channel, "channel");
    const textBytes = measureText(text);
    const id = randomUUID();
    const sentAt = new Date();
    const status = await this.call(() => this.redis.chatSend(caller, channel, id, text, sentAt.getTime()));
    if (status === "not-found") throw chatErrors.noSuchChannel(channel);
    if (status === "not-allowed") throw chatErrors.mustJoin(caller, channel);
    if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
    // The script answers the channel's type when it sent; anything else is a script this code does not know.
    if (status !== "user" && status !== "group") throw unavailable();
    return { kind: "message", id, sender: caller, channel: { name: channel, type: status }, text, textBytes, sentAt, holders: 0 };
  }

  async listChannels(page?: ChannelPage): Promise<ChannelRef[]> {
    // Every name, then the page: bounded by --max-groups and the users
    // online. Sorted sets kept by the scripts would page in Redis itself;
    // not worth their cost on every connect and create at this scale.
    const [users, groups] = await this.call(() => Promise.all([this.redis.hkeys("chat:users"), this.redis.smembers("chat:groups")]));
    const channels: ChannelRef[] = [...users.map((name) => ({ name, type: "user" as const })), ...groups.map((name) => ({ name, type: "group" as const }))];
    return pageOf(sortChannels(channels), page);
  }

  async listMembers(caller: string, name: string, page?: ChannelPage): Promise<string[]> {
    assertValidName(name, "group name");
    // One script, so that the checks and the members are one moment's.
    const [status = "", ...members] = await this.call(() => this.redis.chatListMembers(caller, name));
    if (status === "not-member") throw chatErrors.mustJoinToList(caller, name);
    this.checkCommon(status, caller, name);
    return pageOfNames(members, page);
  }

  async stats(): Promise<ChatStats> {
    const [users, groups] = await this.call(() => Promise.all([this.redis.hlen("chat:users"), this.redis.scard("chat:groups")]));
    return { users, groups };
  }
}
