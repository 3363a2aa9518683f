import assert from "node:assert/strict";
import { ChatError, type ChatErrorKind } from "../../server/core/chat-error.js";
import type { ChatSession } from "../../server/core/chat-session.js";
import type { SessionEvent } from "../../server/core/session-event.js";
import { eventually } from "./eventually.js";
import { describeEvents } from "./session-events.js";

/** Expects a backend call to fail with a ChatError of the kind, whose message has the part. */
export async function failsWith(call: () => unknown, kind: ChatErrorKind, part?: string): Promise<void> {
  await assert.rejects(
    async () => call(),
    (error: unknown) => {
      assert.ok(error instanceof ChatError, `expected a ChatError, got ${String(error)}`);
      assert.equal(error.kind, kind, error.message);
      if (part !== undefined) assert.ok(error.message.includes(part), error.message);
      return true;
    },
  );
}

/**
 * Takes a session's events, as a stream writes them, until one matches
 * `last` once described (deliveries may cross a network); returns them all.
 */
export async function takeUntil(session: ChatSession, last: (line: string) => boolean): Promise<SessionEvent[]> {
  const seen: SessionEvent[] = [];
  await eventually(
    () => {
      const batch = session.take(1e9, 1e12);
      session.written();
      seen.push(...batch);
      return describeEvents(batch).some(last);
    },
    () => `${session.username} never got the event expected; got ${JSON.stringify(describeEvents(seen))}`,
  );
  return seen;
}

/** The same, described (see describeEvents). */
export async function until(session: ChatSession, last: (line: string) => boolean): Promise<string[]> {
  return describeEvents(await takeUntil(session, last));
}

/**
 * Takes a session's events until one ending with each of the endings has
 * come, in any order; returns them all, described. For events of several
 * channels, whose order across channels a Redis Cluster does not keep.
 */
export async function untilEach(session: ChatSession, endings: readonly string[]): Promise<string[]> {
  const lines: string[] = [];
  return until(session, (line) => {
    lines.push(line);
    return endings.every((ending) => lines.some((l) => l.endsWith(ending)));
  });
}
