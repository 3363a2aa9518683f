import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { quote } from "./core/chat-error.js";

/**
 * The context value that carries the authenticated caller's username from the
 * auth interceptor to the handlers. It is empty on exempt methods.
 */
export const userKey = createContextKey<string | undefined>(undefined, { description: "authenticated username" });

/**
 * Extracts the username from an authorization header value: either the bare
 * username, or "Bearer <username>" (the scheme compared without regard to
 * case, as RFC 9110 has it). Returns undefined for a missing or empty value,
 * and for a scheme with no token.
 */
export function parseAuthorization(value: string | null): string | undefined {
  if (value === null) {
    return undefined;
  }
  // "Bearer" alone is a scheme without a token, not a user named Bearer
  // (who can still write "Bearer Bearer").
  const username = value.trim().replace(/^bearer(?:\s+|$)/i, "");
  return username === "" ? undefined : username;
}

/**
 * Creates an interceptor that admits a call only when its authorization header
 * names an online user, and hands that username to the handler through
 * {@link userKey}. Calls to the exempt methods pass untouched.
 */
export function createAuthInterceptor(isOnline: (username: string) => boolean | Promise<boolean>, exempt: DescMethod[]): Interceptor {
  const exemptMethods = new Set(exempt);
  return (next) => async (req) => {
    if (exemptMethods.has(req.method)) {
      return next(req);
    }
    const username = parseAuthorization(req.header.get("authorization"));
    if (username === undefined) {
      throw new ConnectError(
        'missing "authorization" header: send the username of a live Connect stream',
        Code.Unauthenticated,
      );
    }
    if (!(await isOnline(username))) {
      throw new ConnectError(
        `"authorization" names ${quote(username)}, which is not connected`,
        Code.Unauthenticated,
      );
    }
    req.contextValues.set(userKey, username);
    return next(req);
  };
}

/**
 * Returns the caller's username as set by the auth interceptor. Throws
 * UNAUTHENTICATED when the interceptor did not run, which is a wiring mistake
 * that must not let a call through anonymously.
 */
export function authenticatedUser(ctx: HandlerContext): string {
  const username = ctx.values.get(userKey);
  if (username === undefined) {
    throw new ConnectError("the call carries no authenticated user", Code.Unauthenticated);
  }
  return username;
}
