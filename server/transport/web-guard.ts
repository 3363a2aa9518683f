import { isIP } from "node:net";
import { cors } from "@connectrpc/connect";
import type { NodeHandler } from "./node-handler.js";

/** Who may reach the server from a browser. */
export interface WebGuardOptions {
  /** Origins (scheme://host:port) of other sites whose pages may call the server. */
  origins: readonly string[];
  /**
   * Host names requests may name besides IP addresses and localhost;
   * undefined to accept any (a TLS port, where the certificate does this job).
   */
  hosts: readonly string[] | undefined;
}

const allowHeaders = [...cors.allowedHeaders, "authorization"].join(", ");
const exposeHeaders = cors.exposedHeaders.join(", ");

/**
 * Wraps the handler of a port that browsers reach. The Host check refuses a
 * request that names a host the server does not serve: a page on
 * attacker.example whose name is rebound to this server's address (DNS
 * rebinding) can then not talk to it through a user's browser; IP addresses
 * and localhost need no such check, since no one else can rebind them. CORS:
 * pages of the origins listed may call the server; any other origin gets no
 * CORS headers, so the browser keeps its page from reading the answers (and
 * its preflight is refused). The page's own origin needs none of this.
 */
export function createWebGuard(handler: NodeHandler, options: WebGuardOptions): NodeHandler {
  const hosts = options.hosts === undefined ? undefined : new Set(options.hosts.map((h) => h.toLowerCase()));
  const origins = new Set(options.origins);
  return (req, res) => {
    const authority = ("authority" in req ? req.authority : req.headers.host) ?? "";
    if (hosts !== undefined && !hostServed(authority, hosts)) {
      res.statusCode = 421;
      res.setHeader("content-type", "text/plain; charset=utf-8");
      res.end(`this server does not answer to the host ${JSON.stringify(authority)}: an operator can add it with --web-host\n`);
      return;
    }
    const origin = req.headers.origin;
    // Answers differ by origin: caches must keep them apart.
    res.setHeader("vary", "Origin");
    if (typeof origin === "string" && origins.has(origin)) {
      res.setHeader("access-control-allow-origin", origin);
      if (req.method === "OPTIONS") {
        res.statusCode = 204;
        res.setHeader("access-control-allow-methods", cors.allowedMethods.join(", "));
        res.setHeader("access-control-allow-headers", allowHeaders);
        res.setHeader("access-control-max-age", "7200");
        res.end();
        return;
      }
      res.setHeader("access-control-expose-headers", exposeHeaders);
    } else if (req.method === "OPTIONS" && typeof origin === "string") {
      // A preflight from an origin not listed: no CORS headers, so the browser stops there.
      res.statusCode = 403;
      res.end();
      return;
    }
    handler(req, res);
  };
}

/** Whether a Host (or :authority) value names an IP address, localhost, or a listed host. */
function hostServed(authority: string, hosts: ReadonlySet<string>): boolean {
  const hostname = authority.startsWith("[") ? authority.slice(1, authority.indexOf("]")) : authority.replace(/:\d+$/, "");
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return isIP(name) !== 0 || name === "localhost" || hosts.has(name);
}
