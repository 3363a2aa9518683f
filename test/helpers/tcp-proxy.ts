import * as net from "node:net";

/** A loopback TCP proxy that can delay or fail the connections it carries. */
export interface TcpProxy {
  readonly port: number;
  /** Holds every chunk this long before passing it on, either way, in order; 0 carries them at once. */
  setDelay(ms: number): void;
  /** Resets every connection at once, as a crashed peer or a cut cable would. */
  drop(): void;
  /**
   * Stops carrying bytes either way while keeping both sockets open: the
   * server then sees a peer that vanished without a goodbye.
   */
  freeze(): void;
  /**
   * Resets every connection (frozen ones too), and every new one as soon as
   * it arrives, until restore(): a network that is down for a while, not
   * just a blip that a client gets over by reconnecting at once.
   */
  cut(): void;
  /** Carries new connections again after cut(). */
  restore(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port that forwards to targetPort. The
 * tests use it to fail connections under their clients; the demo routes a
 * terminal client through one to show a resume; the chaos run puts one
 * between each node and Redis (a slow or partitioned link) and one in front
 * of each node for its clients.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const sockets = new Set<net.Socket>();
  let frozen = false;
  let cut = false;
  let delayMs = 0;
  const server = net.createServer((client) => {
    client.on("error", () => {});
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    const pair: [net.Socket, net.Socket] = [client, upstream];
    sockets.add(client).add(upstream);
    pairs.add(pair);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      const pass = carry(to, () => delayMs);
      from.on("data", (chunk: Buffer) => {
        if (!frozen) pass(chunk);
      });
      from.on("error", () => {});
      from.on("close", () => {
        pairs.delete(pair);
        sockets.delete(from);
        if (!frozen) to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const drop = () => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
  };
  return {
    // A server listening on a TCP port has an AddressInfo, not a pipe name.
    port: (server.address() as net.AddressInfo).port,
    setDelay(ms) {
      delayMs = ms;
    },
    drop,
    freeze() {
      frozen = true;
    },
    cut() {
      cut = true;
      drop();
      // The frozen connections are gone: the next ones carry bytes.
      frozen = false;
    },
    restore() {
      cut = false;
    },
    async close() {
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Passes chunks on to a socket, each after the delay in force when it
 * arrived. Delayed chunks wait in one queue, drained by one timer, so that
 * none overtakes another: two timers due in the same millisecond may fire
 * in either order, which once reordered Redis's replies to a node.
 */
function carry(to: net.Socket, delay: () => number): (chunk: Buffer) => void {
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
  return (chunk) => {
    const ms = delay();
    if (ms === 0 && queue.length === 0) {
      to.write(chunk);
      return;
    }
    queue.push({ due: Math.max(Date.now() + ms, queue.at(-1)?.due ?? 0), chunk });
    if (!scheduled) {
      scheduled = true;
      setTimeout(pump, queue[0]!.due - Date.now());
    }
  };
}
