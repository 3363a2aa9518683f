/**
 * Runs callbacks once the current turn of the event loop is over, all of
 * them together.
 */
export type WakeScheduler = (wake: () => void) => void;

/**
 * Creates a WakeScheduler that defers callbacks to one setImmediate per turn.
 * A session's reader is woken this way rather than at once, so that every
 * message sent in the same turn (the requests that arrived in one read from
 * a socket) is queued before the reader takes its batch: one response then
 * carries them all, where waking at once would send one response per message
 * per member, and the per-response cost dominates a large group's fan-out.
 */
export function createWakeScheduler(): WakeScheduler {
  let pending: (() => void)[] = [];
  const flush = () => {
    const wakes = pending;
    pending = [];
    for (const wake of wakes) wake();
  };
  return (wake) => {
    if (pending.push(wake) === 1) setImmediate(flush);
  };
}
