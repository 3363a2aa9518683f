import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { RateLimiterMemory } from "rate-limiter-flexible";
import { clientAddressKey, tokenExpiresAtKey, userKey } from "./context-keys.js";
import { retryIn } from "./rate-limit-interceptor.js";
import type { TokenVerifier, VerifiedToken } from "./token-verifier.js";

const hint = 'send "authorization: Bearer <token>" with a token signed for this server';

/**
 * Creates Connect's request gate for signed identities: it runs once the
 * headers are in, before the request body is read (by Connect) or parsed
 * (by the lean path), and refuses with UNAUTHENTICATED a call without a
 * valid token. It hands the token's user to the auth interceptor and the
 * handlers through userKey, and its expiry through tokenExpiresAtKey.
 */
export function createTokenGate(verify: TokenVerifier, failuresPerMinute = 0): (context: HandlerContext) => Promise<void> {
  // Refused tokens per address: each costs a signature check, so past the
  // bound an address's calls are refused without one, for the rest of the minute.
  const failures = failuresPerMinute > 0 ? new RateLimiterMemory({ keyPrefix: "chat:token-failures", points: failuresPerMinute, duration: 60 }) : undefined;
  return async (context) => {
    const address = context.values.get(clientAddressKey) ?? "";
    const record = await failures?.get(address);
    if (record !== undefined && record !== null && record.consumedPoints >= failuresPerMinute) {
      throw new ConnectError(
        `too many refused tokens from this address (at most ${failuresPerMinute} a minute): ${retryIn(record.msBeforeNext)}`,
        Code.ResourceExhausted,
      );
    }
    const header = context.requestHeader.get("authorization");
    if (header === null) {
      throw new ConnectError(`missing "authorization" header: ${hint}`, Code.Unauthenticated);
    }
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(header.trim());
    if (bearer === null) {
      throw new ConnectError(`"authorization" is not "Bearer <token>": ${hint}`, Code.Unauthenticated);
    }
    let token: VerifiedToken;
    try {
      token = await verify(bearer[1]!);
    } catch (error) {
      await failures?.penalty(address);
      throw error;
    }
    context.values.set(userKey, token.username);
    context.values.set(tokenExpiresAtKey, token.expiresAt);
  };
}
