import assert from "node:assert/strict";
import type { ChatEvent, SessionEvent } from "../../server/core/session-event.js";

/** The events as messages, failing when any is another kind: for sessions that asked for nothing else. */
export function messages(events: readonly SessionEvent[]): ChatEvent[] {
  return events.map((event) => {
    assert.equal(event.kind, "message", `expected only messages, got ${JSON.stringify(event)}`);
    return event as ChatEvent; // Just asserted: a message.
  });
}

/** One line per event, for comparing sequences of mixed kinds: "message alice>team: hi", "member-joined team bob", … */
export function describeEvents(events: readonly SessionEvent[]): string[] {
  const channels = (list: readonly { name: string; type: string }[]) => list.map((c) => `${c.type}:${c.name}`).join(",");
  return events.map((event) => {
    if (event.kind === "message") return `message ${event.sender}>${event.channel.name}: ${event.text}`;
    if (event.kind === "channels-changed") return `channels-changed +[${channels(event.added)}] -[${channels(event.removed)}]`;
    if (event.kind === "member-joined") return `member-joined ${event.group} ${event.username}`;
    return `member-left ${event.group} ${event.username} ${event.reason ?? ""}`;
  });
}
