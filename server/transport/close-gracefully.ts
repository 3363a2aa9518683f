import type * as http from "node:http";
import type { Logger } from "pino";
import type { GrpcServer } from "./grpc-server.js";

/**
 * Closes both listeners: no new connection is accepted, HTTP/2 connections
 * get GOAWAY (they finish the streams they have and open no more), idle
 * HTTP/1.1 ones close, and whatever is still open after graceMs is
 * destroyed. Resolves once every connection is gone.
 */
export async function closeGracefully(grpc: GrpcServer, web: http.Server, graceMs: number, logger: Logger): Promise<void> {
  const serverClosed = Promise.all([
    new Promise<void>((resolve) => grpc.listener.close(() => resolve())),
    new Promise<void>((resolve) => (web.listening ? web.close(() => resolve()) : resolve())),
  ]);
  web.closeIdleConnections();
  // A TLS port's HTTP/1.1 server never listened: closing it stops its
  // timeout checks and closes its idle connections (its callback only says
  // that it was not listening).
  grpc.http1?.close(() => {});
  // The server's callback can come before the sessions' own close events.
  const closed = Promise.all([serverClosed, grpc.allClosed()]);
  for (const session of grpc.sessions) {
    session.close();
  }
  const deadline = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
  if (!(await Promise.race([closed.then(() => true), deadline]))) {
    logger.warn({ connections: grpc.sessions.size }, "grace period over: destroying the connections left");
    for (const session of grpc.sessions) {
      session.destroy();
    }
    web.closeAllConnections();
    grpc.http1?.closeAllConnections();
    await closed;
  }
}
