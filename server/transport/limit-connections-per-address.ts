import type * as net from "node:net";
import type { Logger } from "pino";
import { addressKey } from "./address-key.js";

/**
 * Holds each client address to max connections at once on the server: a new
 * connection past it is closed at once, before any byte of it is read (with
 * TLS, before the handshake). One host can then take at most max of the
 * server's connections, whatever it does on them. Says so in the log once a
 * minute at most, with how many were refused meanwhile.
 */
export function limitConnectionsPerAddress(server: net.Server, max: number, logger: Logger): void {
  const open = new Map<string, number>();
  let refused = 0;
  let logged = 0;
  server.on("connection", (socket: net.Socket) => {
    const address = addressKey(socket.remoteAddress);
    const count = open.get(address) ?? 0;
    if (count >= max) {
      socket.destroy();
      refused++;
      if (Date.now() - logged > 60_000) {
        logger.warn({ address, maxConnectionsPerIp: max, refused }, "connection limit per address reached: refusing its new connections");
        logged = Date.now();
        refused = 0;
      }
      return;
    }
    open.set(address, count + 1);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
