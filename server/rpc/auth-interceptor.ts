import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { quote } from "../core/chat-error.js";
import { userKey } from "./context-keys.js";

/** What an authorization header says: a username, or what is wrong with it. */
export type Authorization = { username: string } | { problem: string };

const hint = 'send the username of a live Connect stream, bare or as "Bearer <username>"';

/**
 * Reads an authorization header value: either the bare username, or
 * "Bearer <username>" (the scheme compared without regard to case, as RFC
 * 9110 has it). Anything else comes back as a problem that says what is
 * wrong, for the UNAUTHENTICATED message.
 */
export function parseAuthorization(value: string | null): Authorization {
  if (value === null) {
    // HTTP/2 drops a field value with leading or trailing whitespace as
    // malformed (RFC 9113, 8.2.1), so a padded header arrives as no header.
    return { problem: `missing "authorization" header (one with leading or trailing spaces is dropped as malformed on the way): ${hint}` };
  }
  const trimmed = value.trim();
  if (trimmed === "") {
    return { problem: `the "authorization" header is empty: ${hint}` };
  }
  // "Bearer" alone is a scheme without a token, not a user named Bearer
  // (who can still write "Bearer Bearer").
  const bearer = /^bearer(?:\s+|$)/i.exec(trimmed);
  const username = bearer === null ? trimmed : trimmed.slice(bearer[0].length);
  if (username === "") {
    return { problem: `"authorization" has the Bearer scheme but no token: ${hint}` };
  }
  // A JWT (a JSON header, base64url, begins "eyJ") is no username: a client
  // that sends one expects signed identities, which this server is not set for.
  if (/^eyJ[\w-]*\.[\w-]*\.[\w-]*$/.test(username)) {
    return { problem: `"authorization" carries a signed token, but this server does not use signed identities: ${hint}` };
  }
  if (/\s/.test(username)) {
    const scheme = bearer === null ? username.split(/\s/, 1)[0]! : "Bearer";
    return {
      problem:
        bearer === null
          ? `"authorization" uses the scheme ${quote(scheme)}, which this server does not accept: ${hint}`
          : `"authorization" names ${quote(username)}, which is not one username: ${hint}`,
    };
  }
  return { username };
}

/**
 * Creates an interceptor that admits a call only when its caller is an
 * online user, and hands that username to the handler through
 * {@link userKey}. The caller is the username the authorization header
 * names, or, with signed identities, the user of the token that the request
 * gate (token-gate.ts) verified. Calls to the exempt methods pass untouched.
 */
export function createAuthInterceptor(isOnline: (username: string) => boolean | Promise<boolean>, exempt: DescMethod[], signed = false): Interceptor {
  const exemptMethods = new Set(exempt);
  return (next) => async (req) => {
    if (exemptMethods.has(req.method)) {
      return next(req);
    }
    const username = signed ? verifiedUser(req.contextValues.get(userKey)) : namedUser(req.header.get("authorization"));
    // The in-memory backend answers at once: no microtask turn for it.
    const online = isOnline(username);
    if (!(typeof online === "boolean" ? online : await online)) {
      throw new ConnectError(`"authorization" names ${quote(username)}, which is not connected`, Code.Unauthenticated);
    }
    req.contextValues.set(userKey, username);
    return next(req);
  };
}

/** The username an authorization header names, in the default mode; throws UNAUTHENTICATED for a malformed one. */
function namedUser(header: string | null): string {
  const authorization = parseAuthorization(header);
  if ("problem" in authorization) {
    throw new ConnectError(authorization.problem, Code.Unauthenticated);
  }
  return authorization.username;
}

/** The username of the token the request gate verified; a call it did not see is a wiring mistake, refused. */
function verifiedUser(username: string | undefined): string {
  if (username === undefined) throw new ConnectError("the call carries no verified token", Code.Unauthenticated);
  return username;
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
