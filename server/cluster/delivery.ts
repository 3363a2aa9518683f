import type { ChannelRef, LeaveReason } from "../core/session-event.js";

/**
 * What the scripts publish on a user's inbox or a group's room (see
 * redis-scripts.ts): `<kind><seq>|<epoch>|<fields...>`, the last field free
 * text. Numbered publications (messages and membership events) carry the
 * sequence number of their channel under the claim of that epoch; control
 * words carry 0.
 */
export type Publication =
  | { kind: "message"; seq: number; epoch: string; id: string; sender: string; sentAt: number; text: string }
  | { kind: "joined"; seq: number; epoch: string; user: string; userEpoch: string }
  | { kind: "left"; seq: number; epoch: string; user: string; reason: LeaveReason; detail: string }
  | { kind: "deleted"; seq: number; epoch: string }
  | { kind: "end"; epoch: string; tokenHash: string }
  | { kind: "notice"; epoch: string; replyTo: string; request: string; group: string };

/** A message's fields as the send script publishes them after the sequence and epoch. */
export function messageFields(id: string, sender: string, sentAt: number, text: string): string {
  return `${id}|${sender}|${sentAt}|${text}`;
}

const leaveReasons: readonly string[] = ["left", "disconnected", "cut-off", "group-deleted"] satisfies LeaveReason[];

function isLeaveReason(value: string): value is LeaveReason {
  return leaveReasons.includes(value);
}

/** Splits off the first `count` fields at "|"; the rest, "|" and all, is the last. Undefined when there are fewer. */
function fields(payload: string, count: number): string[] | undefined {
  const out: string[] = [];
  let from = 1;
  for (let i = 0; i < count; i++) {
    const bar = payload.indexOf("|", from);
    if (bar < 0) return undefined;
    out.push(payload.slice(from, bar));
    from = bar + 1;
  }
  out.push(payload.slice(from));
  return out;
}

/** Reads a publication of the scripts; undefined for anything else. */
export function parsePublication(payload: string): Publication | undefined {
  const kind = payload[0];
  if (kind === "m") {
    const f = fields(payload, 5);
    if (f === undefined) return undefined;
    const [seq = "", epoch = "", id = "", sender = "", at = "", text = ""] = f;
    return { kind: "message", seq: Number(seq), epoch, id, sender, sentAt: Number(at), text };
  }
  if (kind === "j") {
    const f = fields(payload, 3);
    if (f === undefined) return undefined;
    const [seq = "", epoch = "", user = "", userEpoch = ""] = f;
    return { kind: "joined", seq: Number(seq), epoch, user, userEpoch };
  }
  if (kind === "l") {
    const f = fields(payload, 4);
    if (f === undefined) return undefined;
    const [seq = "", epoch = "", user = "", reason = "", detail = ""] = f;
    return isLeaveReason(reason) ? { kind: "left", seq: Number(seq), epoch, user, reason, detail } : undefined;
  }
  if (kind === "d") {
    const f = fields(payload, 2);
    if (f === undefined) return undefined;
    const [seq = "", epoch = ""] = f;
    return { kind: "deleted", seq: Number(seq), epoch };
  }
  if (kind === "e") {
    const f = fields(payload, 2);
    if (f === undefined) return undefined;
    const [, epoch = "", tokenHash = ""] = f;
    return { kind: "end", epoch, tokenHash };
  }
  if (kind === "n") {
    const f = fields(payload, 4);
    if (f === undefined) return undefined;
    const [, epoch = "", replyTo = "", request = "", group = ""] = f;
    return { kind: "notice", epoch, replyTo, request, group };
  }
  return undefined;
}

/** One change of presence as the scripts publish it on chat:presence. */
export interface PresenceChange {
  channel: ChannelRef;
  present: boolean;
}

/** Parses JSON, or answers undefined. */
function parseJson(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    return undefined;
  }
}

/** Reads the presence changes the scripts publish; undefined for anything else. */
export function parsePresence(payload: string): PresenceChange[] | undefined {
  const value = parseJson(payload);
  if (typeof value !== "object" || value === null || !("changes" in value) || !Array.isArray(value.changes)) return undefined;
  const list: readonly unknown[] = value.changes;
  const changes: PresenceChange[] = [];
  for (const change of list) {
    if (typeof change !== "object" || change === null) return undefined;
    const c: Partial<Record<"type" | "name" | "present", unknown>> = change;
    if ((c.type !== "user" && c.type !== "group") || typeof c.name !== "string" || typeof c.present !== "boolean") return undefined;
    changes.push({ channel: { name: c.name, type: c.type }, present: c.present });
  }
  return changes;
}
