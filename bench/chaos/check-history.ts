import type { CallEntry, EventEntry, FaultEntry, HistoryEntry, ListedMessage, PhaseEntry, StreamEndEntry, StreamOpenEntry } from "./history.js";

/** The checks, by the name the report gives them. */
export const checkNames = [
  "total-order",
  "sender-fifo",
  "no-duplicates",
  "no-phantoms",
  "request-once",
  "no-silent-loss",
  "membership",
  "unique-names",
  "paused-node",
  "liveness",
  "history-sent",
  "history-order",
  "history-complete",
] as const;

/** One check's name. */
export type CheckName = (typeof checkNames)[number];

/** A broken guarantee, and the lines of the history that prove it. */
export interface Violation {
  check: CheckName;
  message: string;
  excerpt: HistoryEntry[];
}

/** What the checker found, and what it looked at. */
export interface CheckResult {
  violations: Violation[];
  /** How many facts each check examined: pairs compared, deliveries required, and so on. */
  examined: Record<CheckName, number>;
  deliveries: number;
  sessions: number;
  /**
   * What the narrowed claim let pass: deliveries to a session whose stream
   * ended with an error before anything sent later reached it, how many
   * of them did not arrive, and one such case.
   */
  excused: { pairs: number; missing: number; example?: HistoryEntry[] };
  /**
   * Request ids whose attempts spanned a Redis restart, which forgets the
   * ids it held as it forgets everything: not held to one message.
   */
  requestsExcused: number;
}

/** One logical session: its streams (a resume continues it), its events in order, its calls. */
interface Session {
  id: string;
  client: string;
  user: string;
  node: number;
  opens: StreamOpenEntry[];
  ends: StreamEndEntry[];
  events: EventEntry[];
  calls: CallEntry[];
  /** When the first stream connected. */
  start: number;
  /** When the last stream ended (the first end recorded for it), or the run's end. */
  end: number;
  /** How the session ended: "stopped" when its client ended it. */
  how: string;
}

/** The run's bounds, from its start line. */
interface Bounds {
  leaseMs: number;
  deliveryMs: number;
  livenessMs: number;
  /**
   * Whether loss is judged channel by channel: on a Redis Cluster each
   * master's channels reach a node on a connection of their own, so there
   * is no one order across channels to judge it by (docs/cluster.md).
   */
  lossPerChannel: boolean;
  /** The nodes' --history-messages and --history-bytes: a history read that may have reached them is not judged complete. */
  historyMessages: number;
  historyBytes: number;
}

/**
 * Decides, from the recorded history alone, whether the cluster kept its
 * guarantees (docs/chaos.md says exactly what each check claims). Message
 * texts are "<sender> <seq>", unique in a run, so a text names a send (all
 * of its attempts, which carry one request id).
 */
export function checkHistory(history: readonly HistoryEntry[]): CheckResult {
  const phases = history.filter((e): e is PhaseEntry => e.type === "phase");
  const settings = phases.find((p) => p.name === "start")?.settings ?? {};
  const bounds: Bounds = {
    leaseMs: Number(settings.leaseMs ?? 2000),
    deliveryMs: Number(settings.deliveryMs ?? 3000),
    livenessMs: Number(settings.livenessMs ?? 15000),
    lossPerChannel: settings.topology === "redis-cluster",
    historyMessages: Number(settings.historyMessages ?? 1000),
    historyBytes: Number(settings.historyBytes ?? 1024 * 1024),
  };
  const runEnd = phases.find((p) => p.name === "end")?.t ?? Number.POSITIVE_INFINITY;
  const faultsOver = phases.find((p) => p.name === "faults-over")?.t ?? 0;
  const readsAt = phases.find((p) => p.name === "reads")?.t ?? Number.POSITIVE_INFINITY;
  const calls = history.filter((e): e is CallEntry => e.type === "call");
  /** Every attempt of each send, in order, by its text. */
  const attempts = new Map<string, CallEntry[]>();
  for (const call of calls) if (call.op === "send" && call.text !== undefined) attempts.set(call.text, [...(attempts.get(call.text) ?? []), call]);
  /** Each send as one call, from its first attempt's start to its last attempt's end. */
  const sends = new Map<string, CallEntry>();
  for (const [text, list] of attempts) sends.set(text, oneSend(list));
  const lists = calls.filter((c) => c.op === "list" && c.outcome === "ok" && c.listed !== undefined);
  const sessions = collectSessions(history, runEnd);
  const violations: Violation[] = [];
  const examined = Object.fromEntries(checkNames.map((name) => [name, 0])) as Record<CheckName, number>; // Every key is set here.
  const add = (check: CheckName, message: string, excerpt: (HistoryEntry | undefined)[]) =>
    violations.push({ check, message, excerpt: [...new Set(excerpt.filter((e): e is HistoryEntry => e !== undefined))].sort((a, b) => timeOf(a) - timeOf(b)) });
  let deliveries = 0;

  for (const s of sessions.values()) {
    const seen = new Map<string, EventEntry>();
    /** Per channel and sender: the delivered message with the highest sequence number so far. */
    const highest = new Map<string, { seq: number; event: EventEntry }>();
    /** The groups the session's user is in, by its own membership events: the event that put it there. */
    const member = new Map<string, EventEntry>();
    for (const e of s.events) {
      if (e.kind === "member-joined" && e.username === s.user) member.set(e.channel, e);
      if (e.kind === "member-left" && e.username === s.user) member.delete(e.channel);
      if (e.kind !== "message" || e.text === undefined) continue;
      deliveries++;
      const send = sends.get(e.text);
      // No duplicates: one delivery per message per session, resumes included.
      examined["no-duplicates"]++;
      const before = seen.get(e.text);
      if (before !== undefined) add("no-duplicates", `${s.id} received "${e.text}" twice`, [send, before, e]);
      seen.set(e.text, e);
      // No phantoms: only what was sent, and not refused, is delivered.
      examined["no-phantoms"]++;
      if (send === undefined || send.outcome.startsWith("error:")) {
        add("no-phantoms", `${s.id} received "${e.text}", which ${send === undefined ? "no client sent" : `was refused (${send.outcome})`}`, [send, e]);
        continue;
      }
      // FIFO per sender on each channel: a send acknowledged before the next began is delivered before it.
      const key = `${e.channelType}:${e.channel}:${e.sender}`;
      const seq = Number(e.text.split(" ")[1]);
      const top = highest.get(key);
      examined["sender-fifo"]++;
      if (top !== undefined && seq < top.seq) {
        const later = sends.get(top.event.text ?? "");
        if (send.outcome === "ok" && later !== undefined && send.end < later.start) {
          add("sender-fifo", `${s.id} received "${e.text}" after "${top.event.text}", which ${e.sender} sent after "${e.text}" was acknowledged`, [
            send,
            later,
            top.event,
            e,
          ]);
        }
      }
      if (top === undefined || seq > top.seq) highest.set(key, { seq, event: e });
      if (e.channelType !== "group") {
        // Nothing sent to a user before its session began reaches that session.
        examined.membership++;
        if (send.outcome === "ok" && send.end < firstConnectStart(s)) {
          add("membership", `${s.id} (fresh) received "${e.text}", acknowledged before it connected`, [
            send,
            s.calls.find((c) => c.op === "connect"),
            s.opens[0],
            e,
          ]);
        }
        continue;
      }
      // Membership: its own MemberJoined comes first, and nothing sent before the join.
      examined.membership++;
      const joined = member.get(e.channel);
      // A resume that lost events may have lost the MemberJoined too: that loss was reported, not silent.
      const lostBefore = s.opens.some((o) => o.lostEvents > 0 && o.t <= e.t);
      if (joined === undefined && lostBefore) continue;
      if (joined === undefined) {
        add("membership", `${s.id} received "${e.text}" in ${e.channel} without its own MemberJoined before it`, [send, e]);
        continue;
      }
      // The join that made it a member: a join the server refused (ALREADY_EXISTS after a timed-out one that went through) made nothing.
      const joins = s.calls.filter(
        (c) => (c.op === "join" || c.op === "create") && c.target === e.channel && c.start <= joined.t && !c.outcome.startsWith("error:"),
      );
      let at = joins.length - 1;
      // A join whose outcome is unknown (its client timed out) may have gone through after all, and a retry
      // made nothing: the membership may date from the earliest of such a run, unless the member left in between.
      const leftBetween = (from: number, to: number) => s.calls.some((c) => c.op === "leave" && c.target === e.channel && c.start > from && c.start < to);
      while (at > 0 && joins[at - 1]!.outcome === "unknown" && !leftBetween(joins[at - 1]!.start, joins[at]!.start)) at--;
      const join = joins[at];
      if (join !== undefined && send.outcome === "ok" && send.end < join.start) {
        add("membership", `${s.id} received "${e.text}" in ${e.channel}, acknowledged before its join began`, [send, join, joined, e]);
      }
    }
  }

  checkTotalOrder(sessions, examined, add);
  const restarts = history.filter((e): e is FaultEntry => e.type === "fault" && e.kind === "redis-restart");
  const requestsExcused = checkRequests(attempts, sessions, lists, restarts, examined, add);
  checkHistoriesSent(lists, sends, examined, add);
  checkHistoryOrder(lists, sessions, examined, add);
  checkHistoriesComplete(
    lists.filter((l) => l.start >= readsAt),
    sessions,
    sends,
    bounds,
    examined,
    add,
  );
  const excused = checkLoss(sessions, sends, bounds, examined, add);
  checkUniqueNames(sessions, sends, examined, add);
  checkPausedNodes(sessions, history, bounds, examined, add);
  for (const probe of calls.filter((c) => c.op === "probe")) {
    examined.liveness++;
    if (probe.outcome !== "ok" || probe.end - faultsOver > bounds.livenessMs) {
      add("liveness", `${probe.target} served no new session within ${bounds.livenessMs} ms of the faults' end (${probe.outcome})`, [probe]);
    }
  }
  return { violations, examined, deliveries, sessions: sessions.size, excused, requestsExcused };
}

/**
 * The attempts of one send as one call: acknowledged if any attempt was,
 * else unknown if any attempt's outcome was, else refused (every attempt
 * was); it spans them all, since the message, if any, was made by one of
 * them.
 */
function oneSend(list: CallEntry[]): CallEntry {
  const first = list[0]!; // A text's list holds at least its first attempt.
  const last = list.at(-1)!; // The same, or a later one.
  if (list.length === 1) return first;
  const ok = list.find((a) => a.outcome === "ok");
  const outcome = ok?.outcome ?? list.find((a) => a.outcome === "unknown")?.outcome ?? last.outcome;
  const { attempt: _attempt, node: _node, detail: _detail, messageId: _messageId, ...call } = first;
  return {
    ...call,
    end: last.end,
    outcome,
    detail: `${list.length} attempts: ${list.map((a) => `${a.outcome}${a.node === undefined ? "" : ` via node ${a.node}`}`).join(", ")}`,
    ...(ok?.messageId === undefined ? {} : { messageId: ok.messageId }),
  };
}

/** Whether a channel is a group: the workload names its groups g0, g1…, and its users otherwise (c0, probe0, flood0…). */
const isGroup = (channel: string) => channel.startsWith("g");

type Add = (check: CheckName, message: string, excerpt: (HistoryEntry | undefined)[]) => void;

function timeOf(e: HistoryEntry): number {
  return "t" in e ? e.t : e.start;
}

function firstConnectStart(s: Session): number {
  return s.calls.find((c) => c.op === "connect")?.start ?? s.start;
}

function collectSessions(history: readonly HistoryEntry[], runEnd: number): Map<string, Session> {
  const sessions = new Map<string, Session>();
  for (const e of history) {
    if (e.type === "stream-open") {
      let s = sessions.get(e.session);
      if (s === undefined) {
        s = {
          id: e.session,
          client: e.client,
          user: e.user,
          node: e.node,
          opens: [],
          ends: [],
          events: [],
          calls: [],
          start: e.t,
          end: runEnd,
          how: "open at the end",
        };
        sessions.set(e.session, s);
      }
      s.opens.push(e);
    } else if (e.type === "event") sessions.get(e.session)?.events.push(e);
    else if (e.type === "stream-end") sessions.get(e.session)?.ends.push(e);
  }
  for (const e of history) if (e.type === "call") sessions.get(e.session)?.calls.push(e);
  for (const s of sessions.values()) {
    const lastStream = s.opens.at(-1)!.stream; // A session is made by its first stream-open.
    const end = s.ends.find((x) => x.stream === lastStream);
    if (end !== undefined) {
      s.end = end.t;
      s.how = (s.ends.findLast((x) => !x.resuming) ?? s.ends.at(-1)!).how; // Not empty: end is in it.
    }
  }
  return sessions;
}

/** Any two members saw the messages they both received in one group in the same order. */
function checkTotalOrder(sessions: Map<string, Session>, examined: Record<CheckName, number>, add: Add): void {
  const byGroup = new Map<string, { s: Session; events: EventEntry[] }[]>();
  for (const s of sessions.values()) {
    const perGroup = new Map<string, EventEntry[]>();
    for (const e of s.events) {
      if (e.kind !== "message" || e.channelType !== "group") continue;
      perGroup.set(e.channel, [...(perGroup.get(e.channel) ?? []), e]);
    }
    for (const [group, events] of perGroup) byGroup.set(group, [...(byGroup.get(group) ?? []), { s, events }]);
  }
  for (const members of byGroup.values()) {
    const indices = members.map((m) => new Map(m.events.map((e, i) => [e.text, i])));
    for (let a = 0; a < members.length; a++) {
      for (let b = a + 1; b < members.length; b++) {
        const A = members[a]!; // Both indices are within the list.
        const B = members[b]!;
        const inB = indices[b]!;
        let last: { index: number; event: EventEntry } | undefined;
        for (const e of A.events) {
          const index = inB.get(e.text);
          if (index === undefined) continue;
          examined["total-order"]++;
          if (last !== undefined && index < last.index) {
            const other = B.events[index];
            const otherLast = B.events[last.index];
            add("total-order", `${A.s.id} received "${last.event.text}" before "${e.text}" in ${e.channel}; ${B.s.id} received them the other way round`, [
              last.event,
              e,
              other,
              otherLast,
            ]);
            break;
          }
          last = { index, event: e };
        }
      }
    }
  }
}

/** The latest send among the messages a session received, and that message. */
interface Latest {
  sendStart: number;
  event?: EventEntry;
}

/**
 * No silent loss: an acknowledged message reaches every session that was a
 * recipient when it was sent, if that session stayed open until deliveryMs
 * after and ended by its client's choice, or if it received anything sent
 * after the message was acknowledged (on a Redis Cluster: on the same
 * channel). A stream that ended with an error may miss what came after the
 * last message it received (there: on that channel); a resume that
 * reported lost events is not silent.
 */
function checkLoss(
  sessions: Map<string, Session>,
  sends: Map<string, CallEntry>,
  bounds: Bounds,
  examined: Record<CheckName, number>,
  add: Add,
): CheckResult["excused"] {
  const excused: CheckResult["excused"] = { pairs: 0, missing: 0 };
  const byUser = new Map<string, Session[]>();
  for (const s of sessions.values()) byUser.set(s.user, [...(byUser.get(s.user) ?? []), s]);
  /**
   * Per session: the texts it received, and the latest start of a send among
   * the messages it received, in all and on each channel.
   */
  const received = new Map<string, { texts: Set<string>; latest: Latest; byChannel: Map<string, Latest> }>();
  for (const s of sessions.values()) {
    const texts = new Set<string>();
    let latest: Latest = { sendStart: Number.NEGATIVE_INFINITY };
    const byChannel = new Map<string, Latest>();
    for (const e of s.events) {
      if (e.kind !== "message" || e.text === undefined) continue;
      texts.add(e.text);
      const start = sends.get(e.text)?.start ?? Number.NEGATIVE_INFINITY;
      if (start > latest.sendStart) latest = { sendStart: start, event: e };
      if (start > (byChannel.get(e.channel)?.sendStart ?? Number.NEGATIVE_INFINITY)) byChannel.set(e.channel, { sendStart: start, event: e });
    }
    received.set(s.id, { texts, latest, byChannel });
  }
  const groupSessions = [...sessions.values()];
  for (const send of sends.values()) {
    if (send.outcome !== "ok" || send.text === undefined || send.target === undefined) continue;
    const text = send.text;
    const recipients: { s: Session; because?: CallEntry }[] = [];
    const direct = byUser.get(send.target);
    if (direct !== undefined && !send.target.startsWith("g")) {
      for (const s of direct) if (s.start < send.start && s.end > send.end) recipients.push({ s });
    } else {
      for (const s of groupSessions) {
        if (s.start >= send.start || s.end <= send.end) continue;
        const join = s.calls
          .filter((c) => (c.op === "join" || c.op === "create") && c.target === send.target && c.outcome === "ok" && c.end < send.start)
          .at(-1);
        if (join === undefined) continue;
        if (s.calls.some((c) => c.op === "leave" && c.target === send.target && c.start > join.start && c.start < send.end)) continue;
        recipients.push({ s, because: join });
      }
    }
    for (const { s, because } of recipients) {
      // A resume that said events were lost after the send: the loss was not silent.
      if (s.opens.some((o) => o.lostEvents > 0 && o.t > send.start)) continue;
      const got = received.get(s.id)!; // Every session has an entry.
      // A direct message arrives on the recipient's own channel, named after it.
      const channel = send.target.startsWith("g") ? send.target : s.user;
      const later = bounds.lossPerChannel ? (got.byChannel.get(channel) ?? { sendStart: Number.NEGATIVE_INFINITY }) : got.latest;
      const stayed = s.how === "stopped" && s.end >= send.end + bounds.deliveryMs;
      const laterArrived = later.sendStart > send.end;
      if (!stayed && !laterArrived) {
        if (s.how !== "stopped") {
          excused.pairs++;
          if (!got.texts.has(text)) {
            excused.missing++;
            excused.example ??= [
              send,
              ...(because === undefined ? [] : [because]),
              s.opens[0]!,
              ...(later.event === undefined ? [] : [later.event]),
              ...s.ends,
            ];
          }
        }
        continue;
      }
      examined["no-silent-loss"]++;
      if (got.texts.has(text)) continue;
      const why = laterArrived
        ? `though it received "${later.event?.text}", sent after it was acknowledged${bounds.lossPerChannel ? " on the same channel" : ""}`
        : `though its stream stayed open ${bounds.deliveryMs} ms past the acknowledgement`;
      const near = s.events.filter((e) => e.t > send.start - 500 && e.t < send.end + 1000).slice(0, 6);
      add("no-silent-loss", `${s.id} never received "${text}" (to ${send.target}), ${why}`, [send, because, s.opens[0], ...near, later.event, s.ends.at(-1)]);
    }
  }
  return excused;
}

/**
 * Names are unique: once a later session of another client holds a name,
 * the session that held it before receives nothing sent after that (its
 * node no longer routes the user's deliveries to it). Unary calls are not
 * checked here: they carry a name, not a session, and may reach any node,
 * so a call from the earlier client acts for whoever holds the name now.
 */
function checkUniqueNames(sessions: Map<string, Session>, sends: Map<string, CallEntry>, examined: Record<CheckName, number>, add: Add): void {
  const byUser = new Map<string, Session[]>();
  for (const s of sessions.values()) byUser.set(s.user, [...(byUser.get(s.user) ?? []), s]);
  for (const list of byUser.values()) {
    for (const later of list) {
      for (const earlier of list) {
        if (earlier.client === later.client || earlier.start >= later.start || earlier.end <= later.start) continue;
        examined["unique-names"]++;
        const stale = earlier.events.find((e) => e.kind === "message" && (sends.get(e.text ?? "")?.start ?? 0) > later.start);
        if (stale !== undefined) {
          add(
            "unique-names",
            `${earlier.id} and ${later.id} both held "${later.user}": ${earlier.id} received "${stale.text}", sent after ${later.id} connected`,
            [later.opens[0], sends.get(stale.text ?? ""), stale],
          );
        }
      }
    }
  }
}

/** A node paused past its lease does not go on as if nothing happened: its streams of before end soon after it wakes. */
function checkPausedNodes(
  sessions: Map<string, Session>,
  history: readonly HistoryEntry[],
  bounds: Bounds,
  examined: Record<CheckName, number>,
  add: Add,
): void {
  const pauses = history.filter((e): e is FaultEntry => e.type === "fault" && e.kind === "pause" && e.end - e.start > bounds.leaseMs);
  for (const pause of pauses) {
    const node = Number(pause.target.slice("node-".length));
    for (const s of sessions.values()) {
      if (s.node !== node || s.start >= pause.start || s.end <= pause.start) continue;
      // The stream open when the pause began.
      const open = s.opens.findLast((o) => o.t < pause.start);
      const ended = s.ends.find((x) => x.stream === open?.stream);
      if (ended !== undefined && ended.t < pause.start) continue;
      examined["paused-node"]++;
      // A client that had stopped reading (a slow-reader fault) hears of the end only when it reads again.
      const stalls = history.filter((e): e is FaultEntry => e.type === "fault" && e.kind === "slow-reader" && e.target === `clients:${s.client}`);
      const heardBy = Math.max(pause.end, ...stalls.filter((f) => f.start < pause.end + bounds.deliveryMs).map((f) => f.end)) + bounds.deliveryMs;
      if (ended === undefined || ended.t > heardBy) {
        add("paused-node", `${s.id}'s stream on node ${node} was still open ${bounds.deliveryMs} ms after the node woke from a pause past its lease`, [
          pause,
          open,
          ended,
        ]);
      }
    }
  }
}

/**
 * One request id, one message: every attempt of a send that succeeded was
 * answered with the same message id, every delivery of its text carries that
 * id, and so does every history listing it. A second id means the message
 * was made twice, whichever nodes the attempts went through and whoever
 * received the copies. Attempts that spanned a Redis restart are let pass
 * and counted: the restarted Redis forgot the request id with the rest.
 */
function checkRequests(
  attempts: Map<string, CallEntry[]>,
  sessions: Map<string, Session>,
  lists: CallEntry[],
  restarts: FaultEntry[],
  examined: Record<CheckName, number>,
  add: Add,
): number {
  /** Per text, each message id it was seen under, with the first line that shows it. */
  const ids = new Map<string, Map<string, HistoryEntry>>();
  const note = (text: string | undefined, id: string | undefined, e: HistoryEntry) => {
    if (text === undefined || id === undefined || id === "") return;
    const seen = ids.get(text) ?? new Map<string, HistoryEntry>();
    ids.set(text, seen);
    if (!seen.has(id)) seen.set(id, e);
  };
  for (const [text, list] of attempts) for (const a of list) if (a.outcome === "ok") note(text, a.messageId, a);
  for (const s of sessions.values()) for (const e of s.events) if (e.kind === "message") note(e.text, e.id, e);
  for (const l of lists) for (const m of l.listed ?? []) note(m.text, m.id, l);
  let excused = 0;
  for (const [text, seen] of ids) {
    const list = attempts.get(text);
    // A message no one sent is no-phantoms' or history-sent's to report.
    if (list === undefined) continue;
    examined["request-once"]++;
    if (seen.size <= 1) continue;
    const first = list[0]!; // Not empty: made by its first attempt.
    const last = list.at(-1)!;
    if (restarts.some((f) => f.start < last.end && f.end > first.start)) {
      excused++;
      continue;
    }
    add("request-once", `"${text}" (request id ${first.requestId ?? "none"}) became ${seen.size} messages: ${[...seen.keys()].join(", ")}`, [
      ...list,
      ...seen.values(),
    ]);
  }
  return excused;
}

/**
 * No phantom in a history: every message a ListMessages listed was sent by
 * its sender to that channel (a group, or one of the pair to the other),
 * and not refused; a send whose outcome was unknown may be listed. A
 * history that lists one message twice is a duplicate.
 */
function checkHistoriesSent(lists: CallEntry[], sends: Map<string, CallEntry>, examined: Record<CheckName, number>, add: Add): void {
  for (const l of lists) {
    const channel = l.target ?? "";
    const seen = new Set<string>();
    for (const m of l.listed ?? []) {
      examined["history-sent"]++;
      const send = sends.get(m.text);
      if (seen.has(m.text)) add("no-duplicates", `${channel}'s history, read by ${l.client}, lists "${m.text}" twice`, [send, l]);
      seen.add(m.text);
      const why =
        send === undefined
          ? "which no client sent"
          : send.outcome.startsWith("error:")
            ? `which was refused (${send.outcome})`
            : !fits(m, send, l.client, channel)
              ? `as ${m.sender} to ${m.channel}, though ${send.client} sent it to ${send.target}`
              : undefined;
      if (why !== undefined) add("history-sent", `${channel}'s history, read by ${l.client}, lists "${m.text}", ${why}`, [send, l]);
    }
  }
}

/** Whether a listed message is the send of that text: same sender, and to the channel read (to one of the pair, from the other). */
function fits(m: ListedMessage, send: CallEntry, reader: string, channel: string): boolean {
  if (send.client !== m.sender || send.target !== m.channel) return false;
  if (isGroup(channel)) return m.channel === channel;
  return (send.client === reader && send.target === channel) || (send.client === channel && send.target === reader);
}

/**
 * History order is delivery order: every session's deliveries on a
 * channel, restricted to the messages a history read listed, come in the
 * order of the history (newest first, reversed). For a pair, each
 * direction on its own: the two are merged by the times of the Redis
 * masters that hold them (docs/history.md), which no delivery orders.
 */
function checkHistoryOrder(lists: CallEntry[], sessions: Map<string, Session>, examined: Record<CheckName, number>, add: Add): void {
  for (const l of lists) {
    const channel = l.target ?? "";
    const listed = l.listed ?? [];
    /** Each direction read: who sent, who received (the channel of the deliveries), and the history's order of those messages. */
    const directions = isGroup(channel)
      ? [{ from: undefined, to: channel, group: true }]
      : [
          { from: l.client, to: channel, group: false },
          { from: channel, to: l.client, group: false },
        ];
    for (const { from, to, group } of directions) {
      const order = new Map<string, number>();
      for (const m of [...listed].reverse()) if (from === undefined || m.sender === from) order.set(m.text, order.size);
      for (const s of sessions.values()) {
        if (!group && s.user !== to) continue;
        let last: { index: number; event: EventEntry } | undefined;
        for (const e of s.events) {
          if (e.kind !== "message" || e.channel !== to || e.channelType !== (group ? "group" : "user")) continue;
          if (from !== undefined && e.sender !== from) continue;
          const index = order.get(e.text ?? "");
          if (index === undefined) continue;
          examined["history-order"]++;
          if (last !== undefined && index < last.index) {
            add(
              "history-order",
              `${s.id} received "${last.event.text}" before "${e.text}" in ${to}; ${channel}'s history, read by ${l.client}, lists them the other way round`,
              [last.event, e, l],
            );
            break;
          }
          last = { index, event: e };
        }
      }
    }
  }
}

/** A message's size as the nodes count it against --history-bytes: twice its text's UTF-8 size plus 700 (docs/history.md). */
const countedBytes = (m: ListedMessage) => 2 * Buffer.byteLength(m.text) + 700;

/**
 * History holds what was delivered: a group's history, read to its end by
 * a member once the cluster is healed and quiet, lists every message that
 * member's session received in the group since its last own MemberJoined,
 * and every send to the group acknowledged after that MemberJoined and
 * before the read. Judged only where the group cannot have been deleted and
 * made again in between: the session received no MemberLeft of its own
 * since, lost no events in a resume, and its stream was open through the
 * read; and only where the history cannot have reached its bounds.
 */
function checkHistoriesComplete(
  reads: CallEntry[],
  sessions: Map<string, Session>,
  sends: Map<string, CallEntry>,
  bounds: Bounds,
  examined: Record<CheckName, number>,
  add: Add,
): void {
  for (const l of reads) {
    const group = l.target ?? "";
    const listed = l.listed ?? [];
    if (!isGroup(group) || l.complete !== true) continue;
    const bytes = listed.reduce((sum, m) => sum + countedBytes(m), 0);
    // The next message could push the oldest out: any read that full is no proof of a loss.
    if (listed.length + 1 >= bounds.historyMessages || bytes + 2 * 4096 + 700 >= bounds.historyBytes) continue;
    const s = sessions.get(l.session);
    if (s === undefined || s.end < l.end) continue;
    const own = (e: EventEntry, kind: EventEntry["kind"]) => e.kind === kind && e.username === s.user && e.channel === group;
    const joined = s.events.findLast((e) => own(e, "member-joined") && e.t < l.start);
    if (joined === undefined) continue;
    if (s.events.some((e) => own(e, "member-left") && e.t > joined.t)) continue;
    if (s.opens.some((o) => o.lostEvents > 0 && o.t > joined.t)) continue;
    const inHistory = new Set(listed.map((m) => m.text));
    /** What the history must hold, with the lines that say why. */
    const due = new Map<string, (HistoryEntry | undefined)[]>();
    for (const e of s.events) {
      if (e.kind === "message" && e.channelType === "group" && e.channel === group && e.text !== undefined && e.t > joined.t && e.t < l.start) {
        due.set(e.text, [sends.get(e.text), e]);
      }
    }
    for (const send of sends.values()) {
      if (send.target === group && send.outcome === "ok" && send.text !== undefined && send.start > joined.t && send.end < l.start && !due.has(send.text)) {
        due.set(send.text, [send]);
      }
    }
    for (const [text, why] of due) {
      examined["history-complete"]++;
      if (!inHistory.has(text))
        add("history-complete", `${group}'s history, read to its end by ${s.id}, a member all along, does not list "${text}"`, [joined, ...why, l]);
    }
  }
}
