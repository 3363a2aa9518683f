/**
 * Reads the user a signed token names (its "sub" claim) without verifying
 * the token: the server verifies it, and refuses a stream whose username is
 * not the token's. The client only needs the name to connect as. Returns
 * undefined for a value that is not a JWT with a string subject.
 */
export function tokenSubject(token: string): string | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof claims !== "object" || claims === null || !("sub" in claims)) return undefined;
  return typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : undefined;
}
