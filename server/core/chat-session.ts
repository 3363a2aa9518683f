import type { EventOptIns } from "./event-opt-ins.js";
import type { SessionEvent } from "./session-event.js";

/**
 * A connected user's end of the chat: a bounded queue of events waiting to be
 * read by its stream, and a signal that aborts when the session ends.
 */
export interface ChatSession {
  /** The username this session holds while it is live. */
  readonly username: string;
  /**
   * Aborts once the session has ended, with a ChatError as its reason when the
   * core ended it (the client fell behind), or else with the reason its
   * backend ended it with (see BackendSession.end).
   */
  readonly signal: AbortSignal;
  /** How many events are waiting to be taken. */
  readonly pending: number;
  /**
   * What this session holds, in bytes (see queuedEventBytes): the
   * events waiting, and those taken but not yet written.
   */
  readonly pendingBytes: number;
  /**
   * Removes and returns the oldest waiting events, in order: at most
   * maxEvents of them, and no more than maxTextBytes of text unless a single
   * event is larger on its own. Returns an empty array when none wait.
   */
  take(maxEvents: number, maxTextBytes: number): SessionEvent[];
  /**
   * Says that the events taken last have been written (or will never be):
   * until then they still count against the session's bytes and the
   * server's total, since the response that carries them is held in memory.
   */
  written(): void;
  /**
   * Resolves once an event is waiting or the session has ended, not before
   * the end of the turn in which that happened. It never rejects. To stop
   * waiting for another reason, end the session.
   */
  wait(): Promise<void>;
  /**
   * The secret that resumes this session after its stream dropped; undefined
   * when the backend holds no dropped sessions.
   */
  readonly resumeToken: string | undefined;
  /** What the client asked to receive besides messages. */
  readonly optIns: Readonly<EventOptIns>;
  /**
   * Ties a new stream to the session, for sessions that can be resumed: the
   * signal it returns aborts when another stream takes the session over (or
   * the session ends), and the stream must then stop taking events. The
   * stream that was reading is woken so that it sees this at once.
   */
  attachStream(): AbortSignal;
}
