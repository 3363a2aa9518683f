import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { type BackendSession, createBackendSession, type QueueLimits } from "../core/backend-session.js";
import type { ChannelPage } from "../core/channel-page.js";
import { pageOf, pageOfNames, sortChannels } from "../core/channel-page.js";
import type { ChatBackend, ChatStats, ConnectOptions, Resumed, ResumeRequest } from "../core/chat-backend.js";
import { type ChatError, chatErrors } from "../core/chat-error.js";
import type { ChatSession } from "../core/chat-session.js";
import { createLocalSessions, type LocalSessions } from "../core/local-sessions.js";
import { measureText } from "../core/measure-text.js";
import { leaveReasonOf, membershipEvent } from "../core/membership-event.js";
import { badCursor, defaultHistoryBounds, type HistoryBounds, type HistoryPage, type MessagePage, pageLength } from "../core/message-history.js";
import { assertValidName } from "../core/names.js";
import { createQueueBudget } from "../core/queue-budget.js";
import { defaultResumeHistory, type HistoryLimits, resumeSession } from "../core/resume-session.js";
import { checkRequestId, type DedupBounds, defaultDedupBounds, requestIdReused, textDigest } from "../core/send-dedup.js";
import { type ChannelRef, type ChatEvent, type LeaveReason, queuedEventBytes } from "../core/session-event.js";
import { createWakeScheduler } from "../core/wake-scheduler.js";
import { messageFields, type Publication, parsePresence, parsePublication } from "./delivery.js";
import { directoryKeys, nameKeys, ownerOf, repliesChannel } from "./redis-keys.js";
import type { ChatStore } from "./redis-link.js";
import { createRedisNode, type RedisNode, type RedisNodeOptions, unavailable } from "./redis-node.js";

/** Settings of {@link createRedisBackend}: the node's (see redis-node.ts), and the limits. */
export interface RedisBackendOptions extends Omit<RedisNodeOptions, "onMessage" | "onLost" | "broadcastChannels" | "ownChannels" | "releaseUsers"> {
  queueLimit: number;
  /** Bytes that may wait for one session (see queuedEventBytes). */
  queueLimitBytes: number;
  /** Bytes that may wait in this node's queues together; past it, the largest are cut off. */
  maxQueuedBytes: number;
  maxGroupsPerUser: number;
  /** Groups that may exist at once, cluster-wide (see docs/cluster.md for how exactly). */
  maxGroups: number;
  /** How long a session whose stream dropped is held for a resume. Default 0: it ends at once. */
  resumeGraceMs?: number;
  /** What a resumable session keeps of what it delivered. Default 256 events and 256 KiB. */
  resumeHistory?: HistoryLimits;
  /** How often presence changes are handed to this node's watchers, coalesced; 0 switches presence off. Default 250 ms. */
  presenceIntervalMs?: number;
  /** What history Redis keeps per channel (its totalBytes is the in-memory backend's: Redis bounds its own memory). */
  history?: HistoryBounds;
  /** Whether a pair's history outlives its users' sessions: only with signed identities (see MemoryBackendOptions). */
  keepDirectHistory?: boolean;
  /** How long request ids are remembered (only windowMs applies: Redis expires them). */
  dedup?: DedupBounds;
}

/** A {@link ChatBackend} whose state lives in Redis, shared by every node; it starts and closes with its node. */
export interface RedisBackend extends ChatBackend, Pick<RedisNode, "available" | "start" | "close"> {
  /** This node's id, new at every start. */
  readonly nodeId: string;
  /** The command connection, for what else the nodes share (rate limits). */
  readonly store: ChatStore;
}

/** What Redis keeps of a resume token: its SHA-256, so that the store never holds the secret. */
function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/** The hash of a session's resume token, or "" for a session that cannot be resumed. */
function tokenHashOf(session: ChatSession): string {
  return session.resumeToken === undefined ? "" : hashToken(session.resumeToken);
}

/** How long a join through another node waits for the node of the joining session to subscribe. */
const joinAckMs = 2000;

/** Joins through other nodes that a session's node follows at once, besides the session's groups. */
const pendingJoinsPerSession = 16;

/** A new epoch: tells one claim on a name from every other. */
const newEpoch = () => randomBytes(6).toString("base64url");

/** A new person's tag (see Claim). */
const newWho = () => randomBytes(9).toString("base64url");

/** A message of a history stream, with the stream entry's id. */
interface HistoryEntry {
  id: string;
  event: ChatEvent;
}

const streamId = /^\d{1,16}-\d{1,16}$/;

/**
 * The places in the two streams of a pair's history (or the one of a
 * group) that a cursor names, as XREVRANGE ends: "+" for the latest.
 */
function readCursor(cursor: string | undefined): [string, string] {
  if (cursor === undefined) return ["+", "+"];
  const [mine = "", theirs, ...rest] = cursor.split(",");
  if (!streamId.test(mine) || (theirs !== undefined && !streamId.test(theirs)) || rest.length > 0) throw badCursor();
  return [`(${mine}`, theirs === undefined ? "+" : `(${theirs}`];
}

/** Compares two stream ids, newest first. */
function newerFirst(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return bm - am || bs - as;
}

/**
 * The page of a pair's history: the two directions merged by their stream
 * ids, newest first (a group's, with no second stream). The cursor names a place in each, so that the next
 * page continues both: a direction none of whose messages made the page
 * keeps its place (just above the newest it had, or "0-0" when it had none:
 * nothing older can come).
 */
function mergePages(sent: HistoryEntry[], received: HistoryEntry[], page: HistoryPage): MessagePage {
  const all = [...sent.map((e) => ({ ...e, out: true })), ...received.map((e) => ({ ...e, out: false }))].sort((a, b) => newerFirst(a.id, b.id));
  const shown = all.slice(
    0,
    pageLength(
      all.map((e) => e.event),
      page,
    ),
  );
  if (shown.length === all.length) return { messages: shown.map((e) => e.event) };
  const place = (out: boolean, list: HistoryEntry[]): string => {
    const last = shown.filter((e) => e.out === out).pop();
    if (last !== undefined) return last.id;
    const newest = list[0];
    if (newest === undefined) return "0-0";
    // None shown: stay just above its newest, so that it comes first next time.
    const [ms = 0, seq = 0] = newest.id.split("-").map(Number);
    return `${ms}-${seq + 1}`;
  };
  return { messages: shown.map((e) => e.event), next: `${place(true, sent)},${place(false, received)}` };
}

/**
 * What this node knows of a session's claim in Redis: its epoch, the tag of
 * the person (new at each connect, kept by a takeover: it names the direct
 * histories of the user, which a later user of the name must not read),
 * and the last number its inbox delivered.
 */
interface Claim {
  readonly epoch: string;
  who: string;
  seq: number;
  /** Whether Redis confirmed the claim: until then the session is no caller yet. */
  registered: boolean;
}

/** Where this node stands in a group's room: the claim it follows, and the last number it handled. */
interface RoomPlace {
  epoch: string;
  seq: number;
}

/**
 * Creates the cluster backend. Each change of shared state is a Lua script
 * over the keys of one name (see redis-scripts.ts), so that it runs on a
 * Redis Cluster too; an operation over two names is two such steps. A
 * message crosses Redis as one publication: to the recipient's inbox, to
 * which the node holding the recipient is subscribed, or to the group's
 * room, to which every node holding a member is subscribed; each node fans
 * out to its own sessions (see core/local-sessions.ts). Membership events
 * travel in the room with the messages, in one numbered order: a node that
 * sees a gap in the numbers ends the streams that missed something, and a
 * node that loses a connection to Redis ends all of its streams, so no
 * message is lost silently.
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

/** A directory change: listed or unlisted, a user or a group, its name and the epoch of its claim. */
type DirectoryChange = ["+" | "-", ChannelRef["type"], string, string];

/** The one RedisBackend: this node's link to Redis, its sessions, and the settings its commands apply. */
class RedisBackendImpl implements RedisBackend {
  readonly nodeId: string;
  readonly store: ChatStore;
  readonly resumeGraceMs: number;
  readonly presence: boolean;
  private readonly node: RedisNode;
  private readonly local: LocalSessions;
  private readonly logger: Logger;
  private readonly maxGroupsPerUser: number;
  private readonly maxGroups: number;
  private readonly limits: QueueLimits;
  private readonly budget;
  private readonly schedule = createWakeScheduler();
  private readonly resumeHistory: HistoryLimits | undefined;
  private readonly messages: HistoryBounds;
  private readonly keepDirect: boolean;
  private readonly dedupWindowMs: number;
  private readonly claims = new Map<BackendSession, Claim>();
  private readonly rooms = new Map<string, RoomPlace>();
  // The rooms each session holds a subscription to: those of its groups, and of a join on its way.
  private readonly roomHolds = new Map<BackendSession, Set<string>>();
  // Releases of users in Redis under way, by name: a connect of the name here waits for them.
  private readonly releasing = new Map<string, Promise<void>>();
  // Directory changes waiting for the end of this turn of the event loop, by the node they are for.
  private readonly directoryBatches = new Map<string, { changes: DirectoryChange[]; flushed: Promise<void> }>();
  // Joins through this node of sessions on other nodes, waiting for those nodes to subscribe.
  private readonly acks = new Map<string, () => void>();

  constructor(options: RedisBackendOptions) {
    this.maxGroupsPerUser = options.maxGroupsPerUser;
    this.maxGroups = options.maxGroups;
    this.logger = options.logger;
    this.limits = { events: options.queueLimit, bytes: options.queueLimitBytes };
    this.budget = createQueueBudget(options.maxQueuedBytes);
    this.resumeGraceMs = options.resumeGraceMs ?? 0;
    this.resumeHistory = this.resumeGraceMs > 0 ? (options.resumeHistory ?? defaultResumeHistory) : undefined;
    this.messages = options.history ?? defaultHistoryBounds;
    this.keepDirect = options.keepDirectHistory ?? false;
    this.dedupWindowMs = (options.dedup ?? defaultDedupBounds).windowMs;
    this.local = createLocalSessions({
      budget: this.budget,
      presenceIntervalMs: options.presenceIntervalMs ?? 250,
      cutOff: (session, reason) => void this.disconnect(session, reason),
    });
    this.presence = this.local.presence;
    this.node = createRedisNode({
      ...options,
      broadcastChannels: this.presence ? [directoryKeys.presence] : [],
      ownChannels: (id) => [repliesChannel(id)],
      onMessage: (channel, payload) => this.onMessage(channel, payload),
      onLost: (reason) => this.endAll(reason),
      releaseUsers: (node, users, detail) => this.releaseUsers(node, users, detail),
    });
    this.nodeId = this.node.id;
    this.store = this.node.store;
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
  private call<T>(run: (store: ChatStore) => Promise<T>): Promise<T> {
    return this.node.call(() => run(this.store));
  }

  // --- This node's sessions and subscriptions ---

  /** Ends every session, as when Redis is lost: its subscriptions are gone with it. */
  private endAll(reason: ChatError): void {
    const sessions = [...this.local.all()];
    for (const session of sessions) this.forget(session);
    for (const session of sessions) session.end(reason);
    this.rooms.clear();
  }

  /** Forgets a session here: its groups, its subscriptions, its claim. Answers whether it was the one registered under its name. */
  private forget(session: BackendSession): boolean {
    for (const group of this.roomHolds.get(session) ?? []) this.releaseRoom(group);
    this.roomHolds.delete(session);
    const wasCurrent = this.local.remove(session);
    if (this.claims.delete(session)) this.node.subscriptions.release(nameKeys.inbox(session.username));
    return wasCurrent;
  }

  /** Takes a session's hold on a group's room; resolves once subscribed. */
  private async holdRoom(session: BackendSession, group: string): Promise<void> {
    let holds = this.roomHolds.get(session);
    if (holds === undefined) {
      holds = new Set();
      this.roomHolds.set(session, holds);
    }
    if (holds.has(group)) return;
    holds.add(group);
    try {
      await this.node.subscriptions.acquire(nameKeys.room(group));
    } catch (error) {
      holds.delete(group);
      throw error;
    }
  }

  /** Lets go of a session's hold on a group's room, unless it is a member here. */
  private dropRoom(session: BackendSession, group: string): void {
    if (session.groups.has(group)) return;
    if (this.roomHolds.get(session)?.delete(group) === true) this.releaseRoom(group);
  }

  private releaseRoom(group: string): void {
    if (this.node.subscriptions.release(nameKeys.room(group))) this.rooms.delete(group);
  }

  /** The session of a name here whose claim Redis confirmed: a caller that is surely signed in. */
  private registered(username: string): BackendSession | undefined {
    const session = this.local.get(username);
    return session !== undefined && this.claims.get(session)?.registered === true ? session : undefined;
  }

  /** Throws unless the caller is signed in: known here, or its claim in Redis. */
  private async assertSignedIn(caller: string): Promise<void> {
    await this.tagOf(caller);
  }

  // --- What arrives on the shard channels ---

  private onMessage(channel: string, payload: string): void {
    const owner = ownerOf(channel);
    if (owner?.kind === "replies") {
      this.acks.get(payload)?.();
      return;
    }
    if (owner?.kind === "presence") {
      const changes = parsePresence(payload);
      if (changes === undefined) this.logger.warn({ channel, bytes: payload.length }, "ignored a malformed presence change");
      else for (const { channel: ref, present } of changes) this.local.presenceChanged(ref, present);
      return;
    }
    const publication = parsePublication(payload);
    if (owner === undefined || publication === undefined) {
      // Only the scripts publish here; anything else is not ours.
      this.logger.warn({ channel, bytes: payload.length }, "ignored a malformed publication");
    } else if (owner.kind === "inbox") {
      this.onInbox(owner.name, publication);
    } else {
      this.onRoom(owner.name, publication);
    }
  }

  /** A publication on a user's inbox: for the session of its epoch only. */
  private onInbox(username: string, publication: Publication): void {
    const session = this.local.get(username);
    const claim = session === undefined ? undefined : this.claims.get(session);
    if (session === undefined || claim === undefined || publication.epoch !== claim.epoch) return;
    if (publication.kind === "end") {
      if (tokenHashOf(session) === publication.tokenHash) this.endTakenOver(session);
    } else if (publication.kind === "notice") {
      void this.acknowledge(session, publication);
    } else if (publication.kind === "message") {
      const expected = claim.seq + 1;
      claim.seq = publication.seq;
      if (publication.seq !== expected) {
        void this.disconnect(session, chatErrors.missedEvents(username, username));
        return;
      }
      this.local.deliver([session], this.messageEvent(publication, { name: username, type: "user" }));
    }
  }

  private messageEvent(publication: Extract<Publication, { kind: "message" }>, channel: ChannelRef): ChatEvent {
    const { id, sender, text, sentAt } = publication;
    return { kind: "message", id, sender, channel, text, textBytes: Buffer.byteLength(text, "utf8"), sentAt: new Date(sentAt), holders: 0 };
  }

  /**
   * A publication in a group's room. The numbers say whether this node
   * missed one: then its members here missed it too, and their streams end.
   */
  private onRoom(group: string, publication: Publication): void {
    // What comes after the last hold was let go (before the unsubscribe took) is nobody's here.
    if (!("seq" in publication) || !this.node.subscriptions.has(nameKeys.room(group))) return;
    const place = this.rooms.get(group);
    if (place === undefined || place.epoch !== publication.epoch) {
      // A group of a new claim: members here of an earlier one missed its end.
      if (place !== undefined) this.missed(group);
      this.rooms.set(group, { epoch: publication.epoch, seq: publication.seq });
    } else {
      if (publication.seq <= place.seq) return;
      const gap = publication.seq !== place.seq + 1;
      place.seq = publication.seq;
      if (gap) this.missed(group);
    }
    const members = this.local.members(group);
    if (publication.kind === "message") {
      if (members !== undefined) this.local.deliver(members, this.messageEvent(publication, { name: group, type: "group" }));
    } else if (publication.kind === "joined") {
      const session = this.local.get(publication.user);
      const claim = session === undefined ? undefined : this.claims.get(session);
      if (session !== undefined && claim?.epoch === publication.userEpoch && !session.groups.has(group)) {
        this.local.addMember(group, session);
        // Already subscribed (it is this room): the hold only counts it.
        void this.holdRoom(session, group).catch(() => undefined);
      }
      const now = this.local.members(group);
      if (now !== undefined) this.local.notify(now, membershipEvent("member-joined", group, publication.user));
    } else if (publication.kind === "left") {
      if (members === undefined) return;
      this.local.notify(members, membershipEvent("member-left", group, publication.user, [publication.reason, publication.detail]));
      const session = this.local.get(publication.user);
      if (session !== undefined && members.has(session)) this.leftHere(group, session);
    } else if (publication.kind === "deleted") {
      for (const member of [...(members ?? [])]) {
        this.local.notify([member], membershipEvent("member-left", group, member.username, ["group-deleted", ""]));
        this.leftHere(group, member);
      }
    }
  }

  /** A session here is no longer a member of a group. */
  private leftHere(group: string, session: BackendSession): void {
    this.local.removeMember(group, session);
    this.dropRoom(session, group);
  }

  /** This node missed publications of a group: its members here end, since they missed them too. */
  private missed(group: string): void {
    for (const member of [...(this.local.members(group) ?? [])]) void this.disconnect(member, chatErrors.missedEvents(member.username, group));
  }

  /**
   * A session here is joining a group through another node: subscribe to
   * the group's room, then tell that node, which publishes the joining only
   * then, so that this node sees it and all that follows. A join that
   * fails there leaves the subscription unused: it is let go a while later.
   */
  private async acknowledge(session: BackendSession, notice: Extract<Publication, { kind: "notice" }>): Promise<void> {
    // A client that asks other nodes for joins faster than they complete gets no more subscriptions
    // here than its groups allow: the rest time out there, with UNAVAILABLE.
    if ((this.roomHolds.get(session)?.size ?? 0) >= this.maxGroupsPerUser + pendingJoinsPerSession) return;
    try {
      await this.holdRoom(session, notice.group);
      await this.store.spublish(repliesChannel(notice.replyTo), notice.request);
    } catch (err) {
      this.logger.warn({ err, user: session.username, group: notice.group }, "could not follow a join made through another node");
    }
    setTimeout(() => this.dropRoom(session, notice.group), joinAckMs * 5).unref();
  }

  /** Waits for the node of a session to acknowledge a join (see acknowledge); rejects after joinAckMs. */
  private awaitAck(request: string): { acked: Promise<void>; cancel: () => void } {
    let cancel = () => {};
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(request);
        reject(unavailable());
      }, joinAckMs);
      this.acks.set(request, () => {
        clearTimeout(timer);
        this.acks.delete(request);
        resolve();
      });
      cancel = () => {
        clearTimeout(timer);
        this.acks.delete(request);
      };
    });
    acked.catch(() => undefined);
    return { acked, cancel };
  }

  /**
   * Another node took this session over with its resume token, and owns the
   * name in Redis now: end the session here, touching nothing in Redis.
   */
  private endTakenOver(session: BackendSession): void {
    this.forget(session);
    session.end(chatErrors.resumedElsewhere(session.username));
  }

  // --- Steps over several names ---

  /**
   * Lists and unlists names in the directory, as presence changes too. The
   * changes asked for in one turn of the event loop go as one script call:
   * under load, connects and disconnects share it.
   */
  private directory(node: string, changes: readonly DirectoryChange[]): Promise<void> {
    let batch = this.directoryBatches.get(node);
    if (batch === undefined) {
      const pending: DirectoryChange[] = [];
      const flushed = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.directoryBatches.delete(node);
        await this.store.chatDirectory(directoryKeys.users, node, this.presence ? "1" : "", ...pending.flat());
      });
      batch = { changes: pending, flushed };
      this.directoryBatches.set(node, batch);
    }
    batch.changes.push(...changes);
    return batch.flushed;
  }

  /** A user leaves a group, as by a disconnect or a takeover; a group left empty is unlisted. */
  private async leaveFor(username: string, group: string, reason: LeaveReason, detail: string, node: string): Promise<void> {
    const status = await this.store.chatLeave(nameKeys.group(group), group, username, reason, detail);
    if (status.startsWith("deleted:")) await this.directory(node, [["-", "group", group, status.slice("deleted:".length)]]);
  }

  /**
   * Releases a user that a node held, in steps: the claim is marked leaving
   * (no join is let in), the user leaves each group, then the claim goes and
   * the name is unlisted. The name stays taken until the end, so that the
   * next user of it starts in no group.
   */
  private async releaseUser(node: string, username: string, reason: LeaveReason, detail: string): Promise<void> {
    const [status, epoch = "", ...groups] = await this.store.chatRelease(nameKeys.user(username), node, username, this.keepDirect ? "keep" : "");
    if (status === "leaving") {
      for (const group of groups) await this.leaveFor(username, group, reason, detail, node);
      await this.store.chatDrop(nameKeys.user(username), node, username, this.keepDirect ? "keep" : "");
    }
    // A name not held (any more) is only struck from the node's list.
    await this.directory(node, [["-", "user", username, status === "not-held" ? "" : epoch]]);
  }

  /** Releases the users of a node, a few at a time. */
  private async releaseUsers(node: string, users: readonly string[], detail: string): Promise<void> {
    const queue = [...users];
    const worker = async () => {
      for (let user = queue.pop(); user !== undefined; user = queue.pop()) await this.releaseUser(node, user, "disconnected", detail);
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  }

  /**
   * Makes a session and registers it here before Redis hears of it, with
   * its inbox subscribed, so that a delivery published right after the
   * claim finds it; then claims the name; a session whose claim failed is
   * dropped.
   */
  private async openSession(
    username: string,
    optIns: ConnectOptions,
    claim: (session: BackendSession, epoch: string, record: Claim) => Promise<void>,
  ): Promise<BackendSession> {
    const { local, resumeHistory } = this;
    const session = createBackendSession(username, this.limits, this.schedule, this.budget, resumeHistory === undefined ? {} : { history: resumeHistory });
    const epoch = newEpoch();
    local.setOptIns(session, optIns);
    local.add(session);
    const record: Claim = { epoch, who: newWho(), seq: 0, registered: false };
    this.claims.set(session, record);
    try {
      await this.node.call(() => this.node.subscriptions.acquire(nameKeys.inbox(username)));
      await claim(session, epoch, record);
      record.registered = true;
    } catch (error) {
      this.forget(session);
      session.end(error);
      throw error;
    }
    return session;
  }

  /** Resumes a session this node holds, as the in-memory backend does. */
  private async resumeHere(session: BackendSession, request: ResumeRequest): Promise<Resumed> {
    const { local, node } = this;
    const { username } = session;
    const { lost, stream } = resumeSession(session, request);
    local.unhold(session);
    local.setOptIns(session, request);
    let status = "ok";
    try {
      status = await this.call((s) => s.chatResumed(nameKeys.user(username), node.id, username));
    } catch (err) {
      // The session is resumed; Redis may still call its name held until it ends.
      this.logger.warn({ err, user: username }, "could not mark a resumed user in Redis");
    }
    if (status === "not-held") {
      // Another node took the name over (its word to end this session is on its way): this session is done.
      this.endTakenOver(session);
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
    const { node } = this;
    if (!Number.isSafeInteger(request.received) || request.received < 0) throw chatErrors.receivedTooMany(username, request.received);
    const session = await this.openSession(username, request, async (fresh, epoch, record) => {
      const [status, old = "", who = "", ...groups] = await this.call((s) =>
        s.chatTakeover(nameKeys.user(username), node.id, username, hashToken(request.token), tokenHashOf(fresh), epoch),
      );
      if (status === "no-session") throw chatErrors.noSessionToResume(username);
      if (status !== "ok") throw unavailable();
      // The same person: its direct histories stay its own.
      record.who = who;
      await this.call(async () => {
        for (const group of groups) await this.leaveFor(username, group, "disconnected", "its client came back on another server", node.id);
        await this.directory(old, [["-", "user", username, ""]]);
        await this.directory(node.id, [["+", "user", username, epoch]]);
      });
    });
    return { session, resumed: false, lost: 0, stream: session.attachStream() };
  }

  // --- The backend's calls ---

  async connect(username: string, options: ConnectOptions = {}): Promise<ChatSession> {
    const { local, node } = this;
    assertValidName(username, "username");
    const existing = local.get(username);
    if (existing !== undefined) throw local.isHeld(existing) ? chatErrors.usernameHeld(username, this.resumeGraceMs) : chatErrors.usernameOnline(username);
    return this.openSession(username, options, async (session, epoch, record) => {
      // The name's previous session here may still be leaving its groups: its claim goes last.
      await this.releasing.get(username);
      const reclaim = options.reclaim === true ? "reclaim" : "";
      const [status = "", groupEpoch = "", ...members] = await this.call((s) =>
        s.chatConnect(nameKeys.user(username), node.id, username, reclaim, tokenHashOf(session), epoch, record.who),
      );
      checkConnect(status, username);
      await this.call(async (s) => {
        const changes: DirectoryChange[] = [["+", "user", username, epoch]];
        if (groupEpoch !== "") {
          // The former members' lists of groups lose it: until then they only hold a place against their limit.
          await Promise.all(members.map((member) => s.srem(nameKeys.groups(member), username)));
          changes.unshift(["-", "group", username, groupEpoch]);
        }
        await this.directory(node.id, changes);
      });
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
      await this.call((s) => s.chatHold(nameKeys.user(session.username), this.node.id, session.username, resumeGraceMs));
    } catch (err) {
      // Held all the same; another node's connect is told the name is online rather than held.
      this.logger.warn({ err, user: session.username }, "could not mark a held user in Redis");
    }
  }

  async disconnect(chatSession: ChatSession, reason?: unknown): Promise<void> {
    // See hold: a BackendSession behind the public type.
    const session = chatSession as BackendSession;
    session.end(reason);
    const registered = this.claims.get(session)?.registered === true;
    if (!this.forget(session) || !registered || !this.node.available) return;
    const [why, detail] = leaveReasonOf(reason);
    const { username } = session;
    const released = this.releaseUser(this.node.id, username, why, detail).catch((err: unknown) => {
      // Released on recovery, or by the sweep if this node dies.
      this.logger.warn({ err, user: username }, "could not release a user in Redis");
    });
    this.releasing.set(username, released);
    await released;
    if (this.releasing.get(username) === released) this.releasing.delete(username);
  }

  isOnline(username: string): boolean | Promise<boolean> {
    // A session here whose claim Redis confirmed answers without a round trip: every call's auth check asks.
    if (this.registered(username) !== undefined) return true;
    return this.call(async (s) => (await s.hexists(nameKeys.user(username), "node")) === 1);
  }

  /**
   * The first step of a create or join, on the caller's side: the group goes
   * on the caller's list (within its limit). A caller here subscribes to the
   * group's room first; a caller whose session is on another node has that
   * node told, and the join waits until it has subscribed. Answers the
   * caller's epoch, and an undo for when the group's step fails.
   */
  private async enter(caller: string, group: string): Promise<[string, () => Promise<void>]> {
    const here = this.registered(caller);
    if (here !== undefined) await this.node.call(() => this.holdRoom(here, group));
    const undoHold = () => {
      if (here !== undefined) this.dropRoom(here, group);
    };
    const request = here === undefined ? randomUUID() : "";
    const ack = here === undefined ? this.awaitAck(request) : undefined;
    let status: string;
    try {
      status = await this.call((s) =>
        s.chatEnter(nameKeys.user(caller), caller, group, this.maxGroupsPerUser, request === "" ? "" : `${this.node.id}|${request}`),
      );
    } catch (error) {
      undoHold();
      ack?.cancel();
      throw error;
    }
    const [word = "", epoch = ""] = status.split(":");
    if (word !== "added" && word !== "listed") {
      undoHold();
      ack?.cancel();
      if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
      if (status === "limit") throw chatErrors.tooManyGroups(caller, this.maxGroupsPerUser);
      throw unavailable();
    }
    const undo = async () => {
      undoHold();
      if (word === "added") await this.call((s) => s.srem(nameKeys.groups(caller), group));
    };
    try {
      await ack?.acked;
    } catch (error) {
      // The caller's node did not answer: its session may be gone with it.
      await undo().catch(() => undefined);
      throw error;
    }
    return [epoch, undo];
  }

  async createGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    // Counted before, listed after: concurrent creates on several nodes may pass the limit by their number.
    if ((await this.call((s) => s.hlen(directoryKeys.groups))) >= this.maxGroups) {
      await this.assertSignedIn(caller);
      throw chatErrors.tooManyGroupsInTotal(this.maxGroups);
    }
    const [userEpoch, undo] = await this.enter(caller, name);
    const epoch = newEpoch();
    const status = await this.call((s) => s.chatCreate(nameKeys.group(name), name, caller, epoch, userEpoch)).catch(async (error: unknown) => {
      await undo().catch(() => undefined);
      throw error;
    });
    if (status !== "ok") {
      await undo();
      if (status === "group-exists") throw chatErrors.groupExists(name);
      if (status === "user-exists") throw chatErrors.groupIsUser(name);
      throw unavailable();
    }
    await this.call(() => this.directory(this.node.id, [["+", "group", name, epoch]]));
  }

  async joinGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    const [userEpoch, undo] = await this.enter(caller, name);
    const status = await this.call((s) => s.chatJoin(nameKeys.group(name), name, caller, userEpoch)).catch(async (error: unknown) => {
      await undo().catch(() => undefined);
      throw error;
    });
    if (status === "ok") return;
    if (status === "member") {
      const here = this.registered(caller);
      if (here !== undefined) this.dropRoom(here, name);
      throw chatErrors.alreadyMember(caller, name);
    }
    await undo();
    if (status === "not-found") throw chatErrors.noSuchGroup(name);
    throw unavailable();
  }

  async leaveGroup(caller: string, name: string): Promise<void> {
    assertValidName(name, "group name");
    const status = await this.call((s) => s.chatLeave(nameKeys.group(name), name, caller, "left", ""));
    if (status === "not-found" || status === "not-member") {
      await this.assertSignedIn(caller);
      throw status === "not-found" ? chatErrors.noSuchGroup(name) : chatErrors.notAMember(caller, name);
    }
    await this.call(async (s) => {
      await s.srem(nameKeys.groups(caller), name);
      if (status.startsWith("deleted:")) await this.directory(this.node.id, [["-", "group", name, status.slice("deleted:".length)]]);
    });
  }

  /**
   * The tag of a signed-in sender: "s" for every signed identity, whose
   * histories outlive its sessions, else the person's (see Claim). Throws
   * "not-signed-in" for a caller with no claim.
   */
  private async tagOf(caller: string): Promise<string> {
    const here = this.registered(caller);
    const who = here === undefined ? await this.call((s) => s.hget(nameKeys.user(caller), "who")) : this.claims.get(here)?.who;
    if (who === undefined || who === null) throw chatErrors.notSignedIn(caller);
    return this.keepDirect ? "s" : who;
  }

  async send(caller: string, channel: string, text: string, requestId = ""): Promise<ChatEvent> {
    assertValidName(channel, "channel");
    const textBytes = measureText(text);
    checkRequestId(requestId);
    const dedup = requestId !== "" && this.dedupWindowMs > 0;
    const digest = dedup ? textDigest(text) : "";
    let tag: string;
    // A request id bound by this call is let go again when the send is refused: a refused call leaves nothing behind.
    let unbind = async () => {};
    if (dedup) {
      // The request id is bound to this channel and text in the sender's slot first, whichever node the retry reaches.
      const status = await this.call((s) =>
        s.chatRequest(nameKeys.user(caller), caller, requestId, channel, digest, this.dedupWindowMs, this.keepDirect ? "s" : ""),
      );
      if (status === "not-signed-in") throw chatErrors.notSignedIn(caller);
      if (status.startsWith("reused:")) throw requestIdReused(requestId, status.slice("reused:".length));
      const [word = "", who = ""] = status.split(":");
      if (word !== "ok" && word !== "new") throw unavailable();
      tag = this.keepDirect ? "s" : who;
      if (word === "new") {
        unbind = async () => {
          await this.call((s) => s.del(nameKeys.requestId(caller, tag, requestId))).catch(() => undefined);
        };
      }
    } else {
      tag = await this.tagOf(caller);
    }
    const event: ChatEvent = {
      kind: "message",
      id: randomUUID(),
      sender: caller,
      channel: { name: channel, type: "user" },
      text,
      textBytes,
      sentAt: new Date(),
      holders: 0,
    };
    const { messages, bytes, ttlMs } = this.messages;
    const status = await this.call((s) =>
      s.chatSend(
        nameKeys.user(channel),
        channel,
        caller,
        messageFields(event.id, caller, event.sentAt.getTime(), text),
        tag,
        queuedEventBytes(event),
        messages,
        bytes,
        ttlMs,
        dedup ? requestId : "",
        this.dedupWindowMs,
        digest,
      ),
    );
    if (status === "not-found" || status === "not-allowed") {
      await unbind();
      throw status === "not-found" ? chatErrors.noSuchChannel(channel) : chatErrors.mustJoin(caller, channel);
    }
    if (status.startsWith("reused:")) {
      await unbind();
      throw requestIdReused(requestId, channel);
    }
    if (status.startsWith("sent:")) {
      // A retry: the first call's message, nothing sent again.
      const [id = "", at = "", type = ""] = status.slice("sent:".length).split("|");
      return { ...event, id, sentAt: new Date(Number(at)), channel: { name: channel, type: type === "group" ? "group" : "user" } };
    }
    // The script answers the channel's type when it sent; anything else is a script this code does not know.
    if (status !== "user" && status !== "group") throw unavailable();
    return { ...event, channel: { name: channel, type: status } };
  }

  async listMessages(caller: string, channel: string, page: HistoryPage): Promise<MessagePage> {
    assertValidName(channel, "channel");
    const callerTag = await this.tagOf(caller);
    if (this.messages.messages === 0) throw chatErrors.historyOff();
    const [mine, theirs] = readCursor(page.before);
    const count = page.limit + 1;
    // In the channel's slot: a group's history, or what the caller sent the user.
    const [kind = "", tag = "", ...sent] = await this.call((s) =>
      s.chatHistory(nameKeys.user(channel), "auto", channel, caller, callerTag, mine, count, this.keepDirect ? "" : "online"),
    );
    if (kind === "not-member") throw chatErrors.mustJoinToRead(caller, channel);
    if (kind === "not-found") throw chatErrors.noSuchChannel(channel);
    // A group's history is one stream: a page of it is the merge of that stream with none.
    if (kind === "group") return mergePages(this.historyEntries(sent, { name: channel, type: "group" }), [], page);
    if (kind !== "user") throw unavailable();
    // In the caller's slot: what the user sent the caller, under the user's tag; a caller's notes to itself are one stream, read above.
    const [, , ...received] =
      channel === caller
        ? []
        : await this.call((s) => s.chatHistory(nameKeys.user(caller), "direct", caller, channel, this.keepDirect ? "s" : tag, theirs, count, ""));
    const out = this.historyEntries(sent, { name: channel, type: "user" });
    const inbound = this.historyEntries(received, { name: caller, type: "user" });
    if (this.keepDirect && tag === "" && page.before === undefined && out.length === 0 && inbound.length === 0) throw chatErrors.noSuchChannel(channel);
    return mergePages(out, inbound, page);
  }

  /** Reads the entries a history script answered (id, fields, ...), newest first. */
  private historyEntries(flat: readonly string[], channel: ChannelRef): HistoryEntry[] {
    const entries: HistoryEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const publication = parsePublication(`m0|-|${flat[i + 1]}`);
      if (publication?.kind === "message") entries.push({ id: flat[i]!, event: this.messageEvent(publication, channel) });
    }
    return entries;
  }

  async listChannels(page?: ChannelPage): Promise<ChannelRef[]> {
    // Every name, then the page: bounded by --max-groups and the users
    // online, from the directory's one slot.
    const [users, groups] = await this.call((s) => Promise.all([s.hkeys(directoryKeys.users), s.hkeys(directoryKeys.groups)]));
    const channels: ChannelRef[] = [...users.map((name) => ({ name, type: "user" as const })), ...groups.map((name) => ({ name, type: "group" as const }))];
    return pageOf(sortChannels(channels), page);
  }

  async listMembers(caller: string, name: string, page?: ChannelPage): Promise<string[]> {
    assertValidName(name, "group name");
    // One script, so that the checks and the members are one moment's.
    const [status = "", ...members] = await this.call((s) => s.chatMembers(nameKeys.group(name), name, caller));
    if (status !== "ok") {
      await this.assertSignedIn(caller);
      if (status === "not-member") throw chatErrors.mustJoinToList(caller, name);
      if (status === "not-found") throw chatErrors.noSuchGroup(name);
      throw unavailable();
    }
    return pageOfNames(members, page);
  }

  async stats(): Promise<ChatStats> {
    const [users, groups] = await this.call((s) => Promise.all([s.hlen(directoryKeys.users), s.hlen(directoryKeys.groups)]));
    return { users, groups };
  }
}
