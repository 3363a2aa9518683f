import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { userKey } from "./auth-interceptor.js";
import type { TokenVerifier } from "./token-verifier.js";

/** The context value with when the caller's token expires (ms since the epoch), for streams to end then. */
export const tokenExpiresAtKey = createContextKey<number | undefined>(undefined, { description: "when the caller's token expires" });

const hint = 'send "authorization: Bearer <token>" with a token signed for this server';

/**
 * Creates Connect's request gate for signed identities: it runs once the
 * headers are in, before the request body is read (by Connect) or parsed
 * (by the lean path), and refuses with UNAUTHENTICATED a call without a
 * valid token. It hands the token's user to the auth interceptor and the
 * handlers through userKey, and its expiry through tokenExpiresAtKey.
 */
export function createTokenGate(verify: TokenVerifier): (context: HandlerContext) => Promise<void> {
  return async (context) => {
    const header = context.requestHeader.get("authorization");
    if (header === null) {
      throw new ConnectError(`missing "authorization" header: ${hint}`, Code.Unauthenticated);
    }
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(header.trim());
    if (bearer === null) {
      throw new ConnectError(`"authorization" is not "Bearer <token>": ${hint}`, Code.Unauthenticated);
    }
    const token = await verify(bearer[1]!);
    context.values.set(userKey, token.username);
    context.values.set(tokenExpiresAtKey, token.expiresAt);
  };
}
