import type { BackendSession } from "./backend-session.js";
import type { MessageHistory } from "./message-history.js";

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
    if (history.shed(budget.usedBytes - budget.limitBytes) === 0) break;
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
