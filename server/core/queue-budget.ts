import type { BackendSession } from "./backend-session.js";
import type { MessageHistory } from "./message-history.js";
import type { SessionEvent } from "./session-event.js";

/**
 * The bytes queued for all the sessions of one process, against a limit:
 * sessions add what they queue and release what is taken or dropped, and
 * the backend cuts off the largest queues when the total goes over.
 */
export interface QueueBudget {
  readonly limitBytes: number;
  usedBytes: number;
}

/** Creates a budget of limitBytes for all queues together. */
export function createQueueBudget(limitBytes: number): QueueBudget {
  return { limitBytes, usedBytes: 0 };
}

/**
 * Counts one more holder of an event (a queue, a resume history, the
 * message history), and its size against the budget when it is the first:
 * an event many hold counts once.
 */
export function holdEvent(budget: QueueBudget, event: SessionEvent, size: number): void {
  event.holders = (event.holders ?? 0) + 1;
  if (event.holders === 1) budget.usedBytes += size;
}

/** Counts one holder of an event fewer, and takes its size off the budget when none is left. */
export function releaseEvent(budget: QueueBudget, event: SessionEvent, size: number): void {
  event.holders = (event.holders ?? 1) - 1;
  if (event.holders === 0) budget.usedBytes -= size;
}

/**
 * Brings a budget back under its limit by cutting off the sessions that hold
 * the most, largest first: one reader that stopped reading must not take the
 * memory every other user needs. Resume histories are dropped before any
 * session is cut off, and so is the oldest message history. Scans the
 * sessions (a fresh iteration each time: cutting one off changes them)
 * only when over.
 */
export function enforceQueueBudget(
  budget: QueueBudget,
  sessions: () => Iterable<BackendSession>,
  cutOff: (session: BackendSession) => void,
  history?: Pick<MessageHistory, "shed">,
): void {
  if (budget.usedBytes <= budget.limitBytes) return;
  // History is kept for convenience too: its oldest messages go before anyone's stream.
  while (history !== undefined && budget.usedBytes > budget.limitBytes) {
    const before = budget.usedBytes;
    // Oldest first: once what history gives up is still queued, shedding more frees nothing, and the queues must give.
    if (history.shed(budget.usedBytes - budget.limitBytes) === 0 || budget.usedBytes === before) break;
  }
  // Resume histories are a convenience: they go first, before any stream is cut off.
  for (const session of sessions()) session.dropHistory();
  while (budget.usedBytes > budget.limitBytes) {
    let largest: BackendSession | undefined;
    for (const session of sessions()) {
      if (!session.signal.aborted && (largest === undefined || session.pendingBytes > largest.pendingBytes)) largest = session;
    }
    if (largest === undefined || largest.pendingBytes === 0) return;
    cutOff(largest);
  }
}
