import { appendFileSync, writeFileSync } from "node:fs";

/** What a call came to: acknowledged, refused with a status code for certain, or unknown (a deadline, a dropped connection). */
export type Outcome = "ok" | "unknown" | `error:${string}`;

/** One call of a client, from its start to its outcome, in milliseconds since the run began. */
export interface CallEntry {
  type: "call";
  client: string;
  /** The session the call belongs to: a connect call names the session it opened. */
  session: string;
  op: "connect" | "create" | "join" | "leave" | "send" | "list" | "probe";
  /** The group or user addressed, for every op but connect; for a list, the channel read (a group, or the other user of a pair). */
  target?: string;
  /** The message's text, for a send: "<sender> <seq>". */
  text?: string;
  /** A send's request_id: every attempt of one send carries the same. */
  requestId?: string;
  /** Which attempt of its send this call is, from 1: a send whose outcome was unknown is tried again with the same request id. */
  attempt?: number;
  /** The node the call went to. */
  node?: number;
  /** The id of the message the server answered, for a send acknowledged. */
  messageId?: string;
  /** What a list read, newest first as the server listed it (all of its pages when complete is true). */
  listed?: ListedMessage[];
  /** Whether a list read every page, to the end of the history. */
  complete?: boolean;
  start: number;
  end: number;
  outcome: Outcome;
  /** The error's message when the outcome is not ok, for the report. */
  detail?: string;
}

/** One message as ListMessages listed it. */
export interface ListedMessage {
  id: string;
  sender: string;
  /** The group, or the recipient of a direct message. */
  channel: string;
  text: string;
}

/** A stream that connected: the first of a session, or a resume of one. */
export interface StreamOpenEntry {
  type: "stream-open";
  client: string;
  user: string;
  session: string;
  stream: string;
  node: number;
  t: number;
  resumed: boolean;
  lostEvents: number;
}

/** One event a stream delivered. */
export interface EventEntry {
  type: "event";
  client: string;
  session: string;
  stream: string;
  t: number;
  kind: "message" | "member-joined" | "member-left" | "other";
  /** The group of a membership event, or the channel of a message (a group, or the recipient's name). */
  channel: string;
  channelType?: "group" | "user";
  sender?: string;
  text?: string;
  /** A message's id, as the server assigned it. */
  id?: string;
  username?: string;
  reason?: string;
}

/** How a stream ended: "stopped" (its client cancelled it), "completed" (by the server), or the error's code. */
export interface StreamEndEntry {
  type: "stream-end";
  client: string;
  session: string;
  stream: string;
  t: number;
  how: string;
  /** Whether the session goes on in another stream (a resumable session retrying). */
  resuming: boolean;
}

/** A fault the nemesis injected, from its start to its end. */
export interface FaultEntry {
  type: "fault";
  kind: string;
  target: string;
  start: number;
  end: number;
  detail?: string;
}

/**
 * A mark of the run's phases: "faults-over" when the nemesis stopped,
 * "quiet" when the clients stopped sending, "reads" when the deliveries
 * have had their time and the clients read the histories.
 */
export interface PhaseEntry {
  type: "phase";
  name: "start" | "faults-over" | "quiet" | "reads" | "end";
  t: number;
  /** The run's settings, on "start": the checker's bounds come from them. */
  settings?: Record<string, number | string | boolean>;
}

/** Any line of the history. */
export type HistoryEntry = CallEntry | StreamOpenEntry | EventEntry | StreamEndEntry | FaultEntry | PhaseEntry;

/** Records the history of a run in memory and, line by line, in a JSON Lines file. */
export interface HistoryRecorder {
  /** Milliseconds since the run began, on the monotonic clock. */
  now(): number;
  record(entry: HistoryEntry): void;
  entries(): readonly HistoryEntry[];
}

/**
 * Creates a recorder. Every client lives in this one process, so one
 * monotonic clock (performance.now) orders all of the history.
 */
export function createHistoryRecorder(file?: string): HistoryRecorder {
  const origin = performance.now();
  const all: HistoryEntry[] = [];
  if (file !== undefined) writeFileSync(file, "");
  let pending: string[] = [];
  const flush = () => {
    if (file !== undefined && pending.length > 0) appendFileSync(file, pending.join(""));
    pending = [];
  };
  return {
    now: () => Math.round((performance.now() - origin) * 1000) / 1000,
    record(entry) {
      all.push(entry);
      pending.push(`${JSON.stringify(entry)}\n`);
      // Written in batches: a write per event would cost the clients their pace.
      if (pending.length >= 500 || entry.type === "phase") flush();
    },
    entries: () => all,
  };
}
