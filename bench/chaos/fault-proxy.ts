import * as net from "node:net";

/** A loopback TCP proxy that can delay, reset, or refuse the connections it carries. */
export interface FaultProxy {
  readonly port: number;
  /** Holds every chunk this long before passing it on, either way, in order; 0 carries them at once. */
  setDelay(ms: number): void;
  /** Resets every connection it carries now. */
  drop(): void;
  /** Resets every connection, and every new one as it arrives, until restore(): a partition. */
  cut(): void;
  /** Carries new connections again after cut(). */
  restore(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port in front of targetPort. The chaos
 * run puts one between each node and Redis (a partition of one node) and
 * one in front of each node for its clients (their connections cut).
 * test/helpers/tcp-proxy.ts does not delay, and this one need not freeze.
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let delayMs = 0;
  let cut = false;
  const server = net.createServer((client) => {
    client.on("error", () => {});
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    upstream.on("error", () => {});
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      // Delayed chunks wait in one queue per direction, drained by one timer, so that none overtakes another
      // (two timers due in the same millisecond may fire in either order, which reordered Redis's replies).
      const queue: { due: number; chunk: Buffer }[] = [];
      let scheduled = false;
      const pump = () => {
        scheduled = false;
        const now = Date.now();
        while (queue.length > 0 && queue[0]!.due <= now) {
          const { chunk } = queue.shift()!; // Not empty: just checked.
          if (!to.destroyed) to.write(chunk);
        }
        if (queue.length > 0) {
          scheduled = true;
          setTimeout(pump, queue[0]!.due - now);
        }
      };
      from.on("data", (chunk: Buffer) => {
        if (delayMs === 0 && queue.length === 0) {
          to.write(chunk);
          return;
        }
        queue.push({ due: Math.max(Date.now() + delayMs, queue.at(-1)?.due ?? 0), chunk });
        if (!scheduled) {
          scheduled = true;
          setTimeout(pump, queue[0]!.due - Date.now());
        }
      });
      from.on("close", () => {
        pairs.delete(pair);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const drop = () => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    pairs.clear();
  };
  return {
    // A server listening on a TCP port has an AddressInfo, not a pipe name.
    port: (server.address() as net.AddressInfo).port,
    setDelay(ms) {
      delayMs = ms;
    },
    drop,
    cut() {
      cut = true;
      drop();
    },
    restore() {
      cut = false;
    },
    async close() {
      drop();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
