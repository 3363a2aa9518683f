import type { KeyObject } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify } from "jose";

/** Where the keys that sign tokens come from: exactly one. */
export type TokenKeys = { secret: string } | { publicKey: KeyObject } | { jwksUrl: string };

/** Settings of {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  keys: TokenKeys;
  /** The "iss" every token must carry, when set. */
  issuer?: string;
  /** An "aud" every token must carry, when set. */
  audience?: string;
  /** The claim that names the user; "sub" by default. */
  usernameClaim?: string;
}

/** Who a verified token names, and until when. */
export interface VerifiedToken {
  username: string;
  /** When the token expires, in milliseconds since the epoch; undefined for a token without "exp". */
  expiresAt: number | undefined;
}

/** Checks a signed token; throws UNAUTHENTICATED with the reason for any token it does not accept. */
export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

/**
 * Clock skew tolerated on "exp" and "nbf", in seconds: a token that expired
 * this recently still passes, as does one valid this soon.
 */
export const tokenLeewaySeconds = 5;

/**
 * Creates the verifier of signed tokens (JWT), with jose. Only the algorithms
 * of the configured key are accepted: HS256/384/512 for a secret; for a
 * public key, those of its type (RS and PS for RSA, the ES of its curve,
 * EdDSA for Ed25519). So "alg": "none" and algorithm confusion (an HMAC token
 * made with the public key as its secret) are refused as algorithms not
 * accepted. A JWKS is fetched when first needed and again, at most every
 * 30 seconds, when a token names a key it does not hold.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { key, algorithms } = keysOf(options.keys);
  const claim = options.usernameClaim ?? "sub";
  const verifyOptions = {
    algorithms,
    // A token without an expiry, once leaked, would work for ever.
    requiredClaims: ["exp"],
    clockTolerance: tokenLeewaySeconds,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  const verified = createVerifiedCache(10_000);
  return async (token) => {
    const known = verified.get(token);
    if (known !== undefined) return known;
    let payload: Record<string, unknown>;
    try {
      // jose has one overload for a key and one for a key set; each branch picks its own.
      payload = typeof key === "function" ? (await jwtVerify(token, key, verifyOptions)).payload : (await jwtVerify(token, key, verifyOptions)).payload;
    } catch (error) {
      throw new ConnectError(`the token was refused: ${reasonOf(error)}`, Code.Unauthenticated);
    }
    const username = payload[claim];
    if (typeof username !== "string" || username === "") {
      throw new ConnectError(`the token was refused: it has no "${claim}" claim naming the user`, Code.Unauthenticated);
    }
    const result = { username, expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined };
    verified.set(token, result);
    return result;
  };
}

/**
 * Tokens already verified, so that a client calling with the same token again
 * pays a map lookup rather than a signature check (which took about 200 µs of
 * CPU per call in the benchmark). An entry serves until its token expires
 * (with the leeway) and at most maxAgeMs, so a rotated-out key stops being
 * trusted soon after. Bounded in entries and in bytes of tokens (the oldest
 * evicted first). Only tokens that verified are kept: a flood of bad ones
 * costs a check each, and no memory.
 */
function createVerifiedCache(maxEntries: number, maxBytes = 4 * 1024 * 1024, maxAgeMs = 60_000) {
  const entries = new Map<string, { token: VerifiedToken; until: number }>();
  let bytes = 0;
  const remove = (token: string) => {
    if (entries.delete(token)) bytes -= token.length;
  };
  return {
    get(token: string): VerifiedToken | undefined {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      if (Date.now() > entry.until) {
        remove(token);
        return undefined;
      }
      return entry.token;
    },
    set(token: string, value: VerifiedToken): void {
      const expiry = value.expiresAt === undefined ? Number.POSITIVE_INFINITY : value.expiresAt + tokenLeewaySeconds * 1000;
      remove(token);
      entries.set(token, { token: value, until: Math.min(expiry, Date.now() + maxAgeMs) });
      bytes += token.length;
      for (const oldest of entries.keys()) {
        if (entries.size <= maxEntries && bytes <= maxBytes) break;
        remove(oldest);
      }
    },
  };
}

function keysOf(keys: TokenKeys): { key: Uint8Array | KeyObject | JWTVerifyGetKey; algorithms: string[] } {
  if ("secret" in keys) {
    return { key: new TextEncoder().encode(keys.secret), algorithms: ["HS256", "HS384", "HS512"] };
  }
  if ("jwksUrl" in keys) {
    return {
      key: createRemoteJWKSet(new URL(keys.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: 5000 }),
      algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"],
    };
  }
  return { key: keys.publicKey, algorithms: algorithmsOf(keys.publicKey) };
}

/** The signature algorithms a public key can verify. */
export function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    case "rsa-pss":
      return ["PS256", "PS384", "PS512"];
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const byCurve: Record<string, string> = { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" };
      const alg = curve === undefined ? undefined : byCurve[curve];
      if (alg === undefined) throw new Error(`an EC key on curve ${curve ?? "unknown"} signs no JWT algorithm`);
      return [alg];
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"];
    default:
      throw new Error(`a ${key.asymmetricKeyType ?? "symmetric"} key signs no JWT algorithm this server accepts`);
  }
}

/** Why jose refused a token, in words that name no key. */
function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "it has expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return "it is not valid yet";
    if (error.reason === "missing") return `it has no "${error.claim}" claim`;
    return `its "${error.claim}" claim is not what this server expects`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "its algorithm is not one this server accepts";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "its signature does not verify";
  if (error instanceof errors.JWKSNoMatchingKey) return "it names no key of the key set";
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JOSENotSupported) return "its key could not be found";
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return "it is not a well-formed signed JWT";
  return "it could not be verified";
}
