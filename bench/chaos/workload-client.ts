import { Code, ConnectError } from "@connectrpc/connect";
import { createChatClient } from "../../client/chat-client.js";
import { type ChatClient, createResumableSession } from "../../client/sdk/resumable-session.js";
import { ChannelType, type Event, LeaveReason } from "../../gen/chat/v1/chat_pb.js";
import type { CallEntry, EventEntry, HistoryRecorder, ListedMessage, Outcome } from "./history.js";
import type { SeededRandom } from "./seeded-random.js";

/** What one simulated user needs. */
export interface WorkloadClientOptions {
  /** The client's name, which is also its username. */
  name: string;
  /** Resume after a dropped connection (on its home node), rather than start a fresh session on any node. */
  resumable: boolean;
  /** The nodes' URLs, by index. */
  urls: readonly string[];
  /** The node a resumable client always reaches. */
  home: number;
  groups: readonly string[];
  /** The names of the other users, for direct messages. */
  peers: readonly string[];
  random: SeededRandom;
  history: HistoryRecorder;
  /** The pause between two operations, at random in [min, max] ms. */
  pauseMs: readonly [number, number];
  /** A unary call's deadline: past it the outcome is unknown. */
  callTimeoutMs: number;
  /** How many times a send is tried, at most: it is tried again, with the same request id, while its outcome is unknown. */
  sendAttempts: number;
}

/** One simulated user: connects, joins and leaves groups, sends, and records all it does and sees. */
export interface WorkloadClient {
  readonly name: string;
  /** Runs until stop(). */
  run(): Promise<void>;
  /** Sends nothing more, but keeps reading. */
  stopSending(): void;
  /** Ends the session and run(). */
  stop(): void;
  /** The node of the open stream, if any. */
  liveNode(): number | undefined;
  /** Stops reading its stream for that long (a member that stops reading); false when it cannot (a resumable client, or no open stream). */
  stall(ms: number): boolean;
  /**
   * Reads, with ListMessages and to the end, the history of every group the
   * live session is in and of the pairs it makes with a few peers (drawn at
   * random); nothing when no session is live.
   */
  readHistories(): Promise<void>;
}

/** The codes a server gives for a refusal it is sure of; any other failure leaves the outcome unknown. */
const definite = new Set([
  Code.AlreadyExists,
  Code.NotFound,
  Code.FailedPrecondition,
  Code.InvalidArgument,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.Unauthenticated,
]);

/** A call's outcome from its error. */
export function outcomeOf(error: unknown): Outcome {
  const err = ConnectError.from(error);
  return err.isWireError && definite.has(err.code) ? `error:${Code[err.code]}` : "unknown";
}

/** How a stream ended, from its error. */
export function endOf(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return "stopped";
  const err = ConnectError.from(error);
  return `${Code[err.code]}${err.isWireError ? "" : " (transport)"}`;
}

/** An event as the history records it. */
export function describeEvent(event: Event): Pick<EventEntry, "kind" | "channel" | "channelType" | "sender" | "text" | "id" | "username" | "reason"> {
  switch (event.kind.case) {
    case "message": {
      const m = event.kind.value;
      return {
        kind: "message",
        channel: m.channel?.name ?? "",
        channelType: m.channel?.type === ChannelType.GROUP ? "group" : "user",
        sender: m.sender,
        text: m.text,
        id: m.id,
      };
    }
    case "memberJoined":
      return { kind: "member-joined", channel: event.kind.value.group, username: event.kind.value.username };
    case "memberLeft":
      return {
        kind: "member-left",
        channel: event.kind.value.group,
        username: event.kind.value.username,
        reason: LeaveReason[event.kind.value.reason],
      };
    default:
      return { kind: "other", channel: "" };
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Creates a simulated user; every call and event it makes or sees goes to the history. */
export function createWorkloadClient(options: WorkloadClientOptions): WorkloadClient {
  const { name, history, random } = options;
  const clients = new Map<number, ChatClient>();
  const clientOf = (node: number) => {
    let client = clients.get(node);
    if (client === undefined) {
      client = createChatClient(options.urls[node]!, name); // A node index drawn from the list.
      clients.set(node, client);
    }
    return client;
  };
  const stopping = new AbortController();
  let sending = true;
  let sessions = 0;
  let seq = 0;
  /** The session whose stream is open now, if any. */
  let live: { session: string; node: number; groups: Set<string> } | undefined;
  let stalled: Promise<void> | undefined;

  async function call(
    session: string,
    op: "create" | "join" | "leave" | "send",
    target: string,
    text: string | undefined,
    run: (signal: AbortSignal) => Promise<unknown>,
  ) {
    return attempt(session, op, target, text === undefined ? {} : { text }, run);
  }

  /** One call, recorded with the fields given and, when it succeeds, those that its answer adds. */
  async function attempt<T>(
    session: string,
    op: CallEntry["op"],
    target: string,
    fields: Partial<CallEntry>,
    run: (signal: AbortSignal) => Promise<T>,
    answered?: (answer: T) => Partial<CallEntry>,
  ): Promise<Outcome> {
    const start = history.now();
    let outcome: Outcome = "ok";
    let detail: string | undefined;
    let answer: { value: T } | undefined;
    try {
      answer = { value: await run(AbortSignal.timeout(options.callTimeoutMs)) };
    } catch (error) {
      outcome = outcomeOf(error);
      detail = ConnectError.from(error).rawMessage;
    }
    history.record({
      type: "call",
      client: name,
      session,
      op,
      target,
      ...fields,
      start,
      end: history.now(),
      outcome,
      ...(detail === undefined ? {} : { detail }),
      ...(answer === undefined || answered === undefined ? {} : answered(answer.value)),
    });
    return outcome;
  }

  /**
   * A send with a request id, tried again while its outcome is unknown, each
   * retry through a node drawn at random (the same or another): the server
   * must deliver it once, and answer every attempt that succeeds with the
   * same message.
   */
  async function send(session: string, node: number, target: string, text: string): Promise<void> {
    const requestId = text.replace(" ", "-");
    let via = node;
    for (let n = 1; n <= options.sendAttempts; n++) {
      const outcome = await attempt(
        session,
        "send",
        target,
        { text, requestId, attempt: n, node: via },
        (signal) => clientOf(via).sendMessage({ channel: target, text, requestId }, { signal }),
        (answer) => (answer.message === undefined ? {} : { messageId: answer.message.id }),
      );
      if (outcome !== "unknown" || stopping.signal.aborted) return;
      await sleep(random.int(100, 500), stopping.signal);
      via = random.int(0, options.urls.length - 1);
    }
  }

  /**
   * Reads a channel's history with ListMessages, newest first, through a
   * node drawn at random: all of its pages, or only the first (pageSize
   * messages) when all is false.
   */
  async function list(session: string, target: string, pageSize: number, all: boolean): Promise<void> {
    const node = random.int(0, options.urls.length - 1);
    const listed: ListedMessage[] = [];
    let complete = false;
    await attempt(
      session,
      "list",
      target,
      { node },
      async (signal) => {
        let pageToken = "";
        do {
          const page = await clientOf(node).listMessages({ channel: target, pageSize, pageToken }, { signal });
          for (const m of page.messages) listed.push({ id: m.id, sender: m.sender, channel: m.channel?.name ?? "", text: m.text });
          pageToken = page.nextPageToken;
        } while (all && pageToken !== "");
        complete = pageToken === "";
      },
      () => ({ listed, complete }),
    );
  }

  /** One operation, chosen at random, on the live session. */
  async function operate(): Promise<void> {
    const current = live;
    if (current === undefined || !sending) return;
    const client = clientOf(current.node);
    const roll = random.next();
    const joined = [...current.groups];
    if (joined.length === 0 || (roll < 0.12 && joined.length < options.groups.length)) {
      const group = random.pick(options.groups.filter((g) => !current.groups.has(g)));
      let outcome = await call(current.session, "join", group, undefined, (signal) => client.joinGroupChat({ name: group }, { signal }));
      if (outcome === "error:NotFound")
        outcome = await call(current.session, "create", group, undefined, (signal) => client.createGroupChat({ name: group }, { signal }));
      if (outcome === "ok") current.groups.add(group);
    } else if (roll < 0.17) {
      const group = random.pick(joined);
      // Whatever the outcome, send to it no more: a member that may have left is no member to count on.
      current.groups.delete(group);
      await call(current.session, "leave", group, undefined, (signal) => client.leaveGroupChat({ name: group }, { signal }));
    } else if (roll < 0.2) {
      // The latest page of a group's or a pair's history, read under the faults.
      await list(current.session, roll < 0.185 ? random.pick(joined) : random.pick(options.peers), 20, false);
    } else {
      const target = roll < 0.35 ? random.pick(options.peers) : random.pick(joined);
      await send(current.session, current.node, target, `${name} ${++seq}`);
    }
  }

  async function operateWhileLive(signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !stopping.signal.aborted) {
      await sleep(random.int(options.pauseMs[0], options.pauseMs[1]), signal);
      if (stalled !== undefined) await stalled;
      if (!signal.aborted) await operate();
    }
  }

  /** One fresh session on a node picked at random, without resume: its stream's end is the session's. */
  async function plainSession(): Promise<void> {
    const node = random.int(0, options.urls.length - 1);
    const session = `${name}/${++sessions}`;
    const stream = `${session}.1`;
    const ac = new AbortController();
    const stop = () => ac.abort();
    stopping.signal.addEventListener("abort", stop);
    const start = history.now();
    let connected = false;
    let ops: Promise<void> | undefined;
    // A node that is paused answers nothing: give up on it and try another.
    const timer = setTimeout(() => connected || ac.abort(), options.callTimeoutMs);
    let how = "completed";
    try {
      for await (const res of clientOf(node).connect({ username: name, membershipEvents: true }, { signal: ac.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") {
            connected = true;
            history.record({ type: "call", client: name, session, op: "connect", start, end: history.now(), outcome: "ok" });
            history.record({ type: "stream-open", client: name, user: name, session, stream, node, t: history.now(), resumed: false, lostEvents: 0 });
            live = { session, node, groups: new Set() };
            ops = operateWhileLive(ac.signal);
            continue;
          }
          history.record({ type: "event", client: name, session, stream, t: history.now(), ...describeEvent(event) });
        }
        if (stalled !== undefined) await stalled;
      }
    } catch (error) {
      how = endOf(error, stopping.signal);
      if (!connected) {
        history.record({
          type: "call",
          client: name,
          session,
          op: "connect",
          start,
          end: history.now(),
          outcome: ac.signal.aborted && !stopping.signal.aborted ? "unknown" : outcomeOf(error),
          detail: ConnectError.from(error).rawMessage,
        });
      }
    } finally {
      clearTimeout(timer);
      stopping.signal.removeEventListener("abort", stop);
      live = undefined;
      ac.abort();
    }
    if (connected) history.record({ type: "stream-end", client: name, session, stream, t: history.now(), how, resuming: false });
    await ops;
  }

  /** One session that resumes after a dropped connection, on the home node, until it cannot. */
  async function resumableSession(): Promise<void> {
    const node = options.home;
    let session = "";
    let streams = 0;
    let ops: { ac: AbortController; done: Promise<void> } | undefined;
    const stopOps = async () => {
      ops?.ac.abort();
      await ops?.done;
      ops = undefined;
    };
    const start = history.now();
    let connectedOnce = false;
    /** When the last stream dropped, while the session tries to resume. */
    let droppedAt: number | undefined;
    const resumable = createResumableSession({
      client: clientOf(node),
      username: name,
      membershipEvents: true,
      retry: "while-resumable",
      signal: stopping.signal,
      onConnected(connected) {
        if (!connected.resumed) {
          session = `${name}/${++sessions}`;
          streams = 0;
          live = { session, node, groups: new Set() };
          // A fresh session after a drop: its Connect went out some time after the drop, which is as early as the
          // checker may assume it began (a message to this user acknowledged after that may be the new session's).
          history.record({ type: "call", client: name, session, op: "connect", start: droppedAt ?? start, end: history.now(), outcome: "ok" });
        } else if (live === undefined) {
          live = { session, node, groups: new Set() };
        }
        connectedOnce = true;
        history.record({
          type: "stream-open",
          client: name,
          user: name,
          session,
          stream: `${session}.${++streams}`,
          node,
          t: history.now(),
          resumed: connected.resumed,
          lostEvents: Number(connected.lostEvents),
        });
        if (ops === undefined) {
          const ac = new AbortController();
          ops = { ac, done: operateWhileLive(ac.signal) };
        }
      },
      onEvent(event) {
        history.record({ type: "event", client: name, session, stream: `${session}.${streams}`, t: history.now(), ...describeEvent(event) });
      },
      onRetry(retry) {
        // Later tries after the same drop end no stream: none had opened.
        if (retry.attempt !== 1) return;
        droppedAt = history.now();
        history.record({
          type: "stream-end",
          client: name,
          session,
          stream: `${session}.${streams}`,
          t: history.now(),
          how: endOf(retry.reason, stopping.signal),
          resuming: true,
        });
        void stopOps();
      },
    });
    const end = await resumable.run();
    live = undefined;
    await stopOps();
    const how = end.kind === "stopped" ? "stopped" : end.kind === "ended" ? "completed" : endOf("error" in end ? end.error : undefined, stopping.signal);
    if (connectedOnce) {
      history.record({ type: "stream-end", client: name, session, stream: `${session}.${streams}`, t: history.now(), how, resuming: false });
    } else {
      history.record({
        type: "call",
        client: name,
        session: `${name}/-`,
        op: "connect",
        start,
        end: history.now(),
        outcome: "error" in end ? outcomeOf(end.error) : "unknown",
      });
    }
  }

  return {
    name,
    async run() {
      while (!stopping.signal.aborted) {
        await (options.resumable ? resumableSession() : plainSession());
        // A name held for its resume grace refuses a fresh session for a while: try again after a pause.
        await sleep(random.int(100, 400), stopping.signal);
      }
    },
    stopSending() {
      sending = false;
    },
    stop() {
      stopping.abort();
    },
    liveNode: () => live?.node,
    async readHistories() {
      const current = live;
      if (current === undefined) return;
      const pairs = options.peers.filter(() => random.next() < 0.25);
      await Promise.all([...current.groups, ...pairs].map((channel) => list(current.session, channel, 0, true)));
    },
    stall(ms) {
      if (options.resumable || live === undefined || stalled !== undefined) return false;
      stalled = sleep(ms, stopping.signal).then(() => {
        stalled = undefined;
      });
      return true;
    },
  };
}
