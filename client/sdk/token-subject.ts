/**
 * Reads the user a signed token names (its "sub" claim) without verifying
 * the token: the server verifies it, and refuses a stream whose username is
 * not the token's. A client only needs the name to connect as, so that the
 * terminal's --user and the page's username may be left out when a token is
 * given. Returns undefined for a value that is not a JWT with a string
 * subject. Written for Node.js and browsers alike (atob, TextDecoder).
 */
export function tokenSubject(token: string): string | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined || payload === "") return undefined;
  let claims: unknown;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return undefined;
  }
  if (typeof claims !== "object" || claims === null || !("sub" in claims)) return undefined;
  return typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : undefined;
}
