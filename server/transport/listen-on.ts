import type * as net from "node:net";
import type { AddressInfo } from "node:net";
import { ConfigError } from "../ops/config-error.js";
import { settingFlag, settingLabel } from "../ops/server-settings.js";

/** How a port is listened on. */
export interface ListenOptions {
  /**
   * Binds with SO_REUSEPORT, so that other processes that do the same share
   * the port and the kernel spreads new connections over them.
   */
  reusePort?: boolean;
}

/**
 * Listens on a port and resolves with the bound address. A port that cannot
 * be had rejects with a ConfigError naming the setting (that of the port, or
 * --host, or --reuse-port where the system cannot share a port) and the
 * address.
 */
export function listenOn(
  server: net.Server,
  port: number,
  host: string,
  setting: "port" | "webPort" | "metricsPort",
  { reusePort = false }: ListenOptions = {},
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
      const named = `${settingLabel(setting)} ${port}`;
      // A shared port is refused only when a process holds it without
      // sharing, or as another user (the kernel shares among one user's).
      const holder = reusePort ? ` by a process without ${settingFlag("reusePort")}, or of another user` : "";
      const messages: Record<string, string> = {
        EADDRINUSE: `${named}: ${where} is already in use${holder}`,
        EACCES: `${named}: no permission to listen on ${where}`,
        EADDRNOTAVAIL: `${settingLabel("host")} ${host}: not an address of this machine`,
        ENOTFOUND: `${settingLabel("host")} ${host}: no such host`,
        ENOTSUP: `${settingLabel("reusePort")}: this system cannot share a port (no SO_REUSEPORT)`,
      };
      reject(new ConfigError(messages[error.code ?? ""] ?? `${named}: cannot listen on ${where} (${error.message})`));
    };
    server.once("error", onError);
    server.listen({ port, host, reusePort }, () => {
      server.off("error", onError);
      resolve(boundAddress(server));
    });
  });
}

/** The address a listening server is bound to. */
export function boundAddress(server: net.Server): AddressInfo {
  const address = server.address();
  // A TCP server's address is an AddressInfo; only a pipe's is a string.
  if (address === null || typeof address === "string") throw new Error("the server is not listening on a TCP port");
  return address;
}

/** An address as host:port, with brackets around an IPv6 host. */
export function hostPort(address: AddressInfo): string {
  return `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
}
