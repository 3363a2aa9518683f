/** Watches the responses that wait for their client to read them. */
export interface StallWatch<K> {
  /** A response for this stream has been handed to the transport. */
  writing(key: K): void;
  /** The transport took it (or the stream ended). */
  written(key: K): void;
}

/**
 * Creates a StallWatch that calls onStall for a stream whose response has
 * waited longer than timeoutMs. One timer checks them all, a quarter of the
 * timeout apart, so that the fan-out path pays a map entry per response,
 * not a timer.
 */
export function createStallWatch<K>(timeoutMs: number, onStall: (key: K) => void): StallWatch<K> {
  const since = new Map<K, number>();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const now = performance.now();
    for (const [key, started] of since) {
      if (now - started > timeoutMs) {
        since.delete(key);
        onStall(key);
      }
    }
    if (since.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    writing(key) {
      since.set(key, performance.now());
      if (timer === undefined) {
        timer = setInterval(check, Math.max(10, timeoutMs / 4));
        timer.unref();
      }
    },
    written(key) {
      since.delete(key);
    },
  };
}
