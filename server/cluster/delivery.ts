import type { ChannelRef, ChatEvent } from "../core/chat-session.js";

/** A message as the send script publishes it to a node. */
interface DeliveredMessage {
  id: string;
  sender: string;
  channel: string;
  type: ChannelRef["type"];
  text: string;
  at: number;
  to: string[];
}

/** A delivery: the event, and the node's users it is for. */
export interface Delivery {
  event: ChatEvent;
  to: readonly string[];
}

/** Reads a delivery published by the send script; undefined for anything else. */
export function parseDelivery(payload: string): Delivery | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isDeliveredMessage(value)) return undefined;
  return {
    event: {
      id: value.id,
      sender: value.sender,
      channel: { name: value.channel, type: value.type },
      text: value.text,
      textBytes: Buffer.byteLength(value.text, "utf8"),
      sentAt: new Date(value.at),
      holders: 0,
    },
    to: value.to,
  };
}

function isDeliveredMessage(value: unknown): value is DeliveredMessage {
  if (typeof value !== "object" || value === null) return false;
  const m: Partial<Record<keyof DeliveredMessage, unknown>> = value;
  return (
    typeof m.id === "string" &&
    typeof m.sender === "string" &&
    typeof m.channel === "string" &&
    (m.type === "user" || m.type === "group") &&
    typeof m.text === "string" &&
    typeof m.at === "number" &&
    Array.isArray(m.to) &&
    m.to.every((name) => typeof name === "string")
  );
}
