import type { Interceptor } from "@connectrpc/connect";

/**
 * Creates an interceptor that names the caller in the authorization header of
 * every call: the username, as the server requires of every RPC but Connect
 * by default, or a signed token, which a server with --jwt-* requires of
 * every RPC.
 */
export function createAuthorizationInterceptor(credential: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}
