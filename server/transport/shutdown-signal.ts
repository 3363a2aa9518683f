/** The server's shutdown signal, and how to raise it. */
export interface ShutdownSignal {
  /** Given to Connect and the lean path, which link every call's signal to it. */
  readonly signal: AbortSignal;
  /** Aborts the signal with reason: every call still listening ends with it. */
  abort(reason: unknown): void;
  /** How many calls are listening now. */
  readonly listeners: number;
}

/** A listener as EventTarget takes it: a function, or an object with handleEvent. */
type Listener = ((event: Event) => void) | { handleEvent(event: Event): void };

/**
 * Creates the signal that ends every call when the server shuts down.
 *
 * Connect links each call's signal to the shutdown signal: an "abort"
 * listener added when the call starts and removed when it ends. Node's
 * EventTarget keeps listeners in a list that both addEventListener (looking
 * for a duplicate) and removeEventListener walk, so with n calls open each
 * costs O(n): at 10,000 Connect streams these two walks were 42% of the
 * server's CPU (docs/upstream.md). This signal keeps its listeners in a Set
 * instead, and has exactly what Connect reads of a signal: aborted, reason,
 * and the two listener methods.
 */
export function createShutdownSignal(): ShutdownSignal {
  const listeners = new Set<Listener>();
  const signal = {
    aborted: false,
    reason: undefined as unknown,
    onabort: null,
    addEventListener(type: string, listener: Listener | null) {
      if (type === "abort" && listener !== null && !signal.aborted) listeners.add(listener);
    },
    removeEventListener(type: string, listener: Listener | null) {
      if (type === "abort" && listener !== null) listeners.delete(listener);
    },
    throwIfAborted() {
      if (signal.aborted) throw signal.reason;
    },
  };
  return {
    // Only the members above are used, by Connect (createLinkedAbortController,
    // getAbortSignalReason) and by our lean path, which call it as a signal.
    signal: signal as unknown as AbortSignal,
    abort(reason) {
      if (signal.aborted) return;
      signal.aborted = true;
      signal.reason = reason;
      const event = new Event("abort");
      for (const listener of [...listeners]) {
        listeners.delete(listener);
        if (typeof listener === "function") listener.call(signal, event);
        else listener.handleEvent(event);
      }
    },
    get listeners() {
      return listeners.size;
    },
  };
}
