import type { BackendSession } from "./backend-session.js";
import { chatErrors } from "./chat-error.js";

/** How much of what a resumable session delivered it keeps for a resume. */
export interface HistoryLimits {
  /** Events kept after they were delivered. */
  events: number;
  /** Bytes (see queuedEventBytes) of those events. */
  bytes: number;
}

/** The defaults of a resumable session's history. */
export const defaultResumeHistory: HistoryLimits = { events: 256, bytes: 256 * 1024 };

/**
 * Gives a session to the stream that presents its resume token: the events
 * after the first `received` wait again, and the stream that had it is told
 * it lost it. Throws "not-found" for another token and "invalid-input" for a
 * count the session never reached, changing nothing. Rewinding comes first,
 * in the same turn as the takeover, so that the old stream cannot take
 * events in between.
 */
export function resumeSession(session: BackendSession, request: { token: string; received: number }): { lost: number; stream: AbortSignal } {
  if (!session.hasResumeToken(request.token)) throw chatErrors.noSessionToResume(session.username);
  const lost = session.rewind(request.received);
  if (lost === undefined) throw chatErrors.receivedTooMany(session.username, request.received);
  return { lost, stream: session.attachStream() };
}
