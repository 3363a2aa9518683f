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
 * terminal client through one to show a resume.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const sockets = new Set<net.Socket>();
  let frozen = false;
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.on("error", () => {});
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
  const drop = () => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
  };
  return {
    // A server listening on a TCP port has an AddressInfo, not a pipe name.
    port: (server.address() as net.AddressInfo).port,
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
