import { membershipEvent } from "../core/membership-event.js";
import type { ChannelRef, ChatEvent, LeaveReason, MembershipEvent } from "../core/session-event.js";

/** A message as the send script publishes it to a node: no kind (see redis-scripts.ts). */
interface DeliveredMessage {
  kind?: "message";
  id: string;
  sender: string;
  channel: string;
  type: ChannelRef["type"];
  text: string;
  at: number;
  to: string[];
}

/** A membership event as the scripts publish it to a node. */
interface DeliveredMembership {
  kind: MembershipEvent["kind"];
  group: string;
  /** Who joined or left; absent when each recipient left (its group was deleted). */
  user?: string;
  reason?: LeaveReason;
  detail?: string;
  to: string[];
}

/** The takeover script's word to the node whose session was resumed elsewhere. */
interface DeliveredEnd {
  kind: "end";
  user: string;
  /** The SHA-256 of the resume token presented: only the session it belongs to ends. */
  hash: string;
}

/** The connect and takeover scripts' word that a session of this node now holds the name in Redis. */
interface DeliveredStart {
  kind: "start";
  user: string;
  /** The SHA-256 of the session's resume token, or "" for a session that cannot be resumed. */
  hash: string;
}

/**
 * What one publication on a node's channel asks of it: queue an event for
 * some of its users (`event` gives each recipient its event: one object
 * shared by all, except when each hears of itself), or end a session that
 * was resumed on another node.
 */
export type Delivery =
  | { kind: "event"; to: readonly string[]; event: (recipient: string) => ChatEvent | MembershipEvent; membership: boolean }
  | { kind: "end"; user: string; tokenHash: string }
  | { kind: "start"; user: string; tokenHash: string };

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

/** Reads a delivery published by the scripts; undefined for anything else. */
export function parseDelivery(payload: string): Delivery | undefined {
  const value = parseJson(payload);
  if (isDeliveredMessage(value)) {
    const event: ChatEvent = {
      kind: "message",
      id: value.id,
      sender: value.sender,
      channel: { name: value.channel, type: value.type },
      text: value.text,
      textBytes: Buffer.byteLength(value.text, "utf8"),
      sentAt: new Date(value.at),
      holders: 0,
    };
    return { kind: "event", to: value.to, event: () => event, membership: false };
  }
  if (isDeliveredMembership(value)) {
    const leave: [LeaveReason, string] | undefined = value.reason === undefined ? undefined : [value.reason, value.detail ?? ""];
    const { kind, group, user } = value;
    if (user === undefined) return { kind: "event", to: value.to, event: (recipient) => membershipEvent(kind, group, recipient, leave), membership: true };
    const event = membershipEvent(kind, group, user, leave);
    return { kind: "event", to: value.to, event: () => event, membership: true };
  }
  if (isDeliveredEnd(value)) return { kind: "end", user: value.user, tokenHash: value.hash };
  if (isDeliveredStart(value)) return { kind: "start", user: value.user, tokenHash: value.hash };
  return undefined;
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

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((name) => typeof name === "string");
}

function isDeliveredMessage(value: unknown): value is DeliveredMessage {
  if (typeof value !== "object" || value === null) return false;
  const m: Partial<Record<keyof DeliveredMessage, unknown>> = value;
  return (
    (m.kind === undefined || m.kind === "message") &&
    typeof m.id === "string" &&
    typeof m.sender === "string" &&
    typeof m.channel === "string" &&
    (m.type === "user" || m.type === "group") &&
    typeof m.text === "string" &&
    typeof m.at === "number" &&
    isNameList(m.to)
  );
}

const leaveReasons: readonly unknown[] = ["left", "disconnected", "cut-off", "group-deleted"] satisfies LeaveReason[];

function isDeliveredMembership(value: unknown): value is DeliveredMembership {
  if (typeof value !== "object" || value === null) return false;
  const m: Partial<Record<keyof DeliveredMembership, unknown>> = value;
  return (
    (m.kind === "member-joined" || m.kind === "member-left") &&
    typeof m.group === "string" &&
    (m.user === undefined || typeof m.user === "string") &&
    (m.reason === undefined || leaveReasons.includes(m.reason)) &&
    (m.detail === undefined || typeof m.detail === "string") &&
    isNameList(m.to)
  );
}

function isDeliveredEnd(value: unknown): value is DeliveredEnd {
  if (typeof value !== "object" || value === null) return false;
  const m: Partial<Record<keyof DeliveredEnd, unknown>> = value;
  return m.kind === "end" && typeof m.user === "string" && typeof m.hash === "string";
}

function isDeliveredStart(value: unknown): value is DeliveredStart {
  if (typeof value !== "object" || value === null) return false;
  const m: Partial<Record<keyof DeliveredStart, unknown>> = value;
  return m.kind === "start" && typeof m.user === "string" && typeof m.hash === "string";
}
