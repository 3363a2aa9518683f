import * as net from "node:net";

/** A loopback TCP proxy that can fail the connections it carries. */
export interface TcpProxy {
  readonly port: number;
  /** Resets every connection at once, as a crashed peer or a cut cable would. */
  drop(): void;
  /**
   * Stops carrying bytes either way while keeping both sockets open: the
   * server then sees a peer that vanished without a goodbye.
   */
  freeze(): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port that forwards to targetPort.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    const pair: [net.Socket, net.Socket] = [client, upstream];
    sockets.add(client).add(upstream);
    pairs.add(pair);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on("data", (chunk) => {
        if (!frozen) to.write(chunk);
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
  return {
    port: (server.address() as net.AddressInfo).port,
    drop() {
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    freeze() {
      frozen = true;
    },
    async close() {
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
