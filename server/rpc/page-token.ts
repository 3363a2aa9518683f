import { ChatError, quote } from "../core/chat-error.js";
import { isValidName } from "../core/names.js";

// A page token names the last channel of its page, so the next page starts
// after it whatever came or went meanwhile. It is opaque to clients (AIP-158):
// base64url, with a version prefix so that its form can change.

/** The token of the page that follows the one ending with lastName. */
export function pageToken(lastName: string): string {
  return Buffer.from(`v1:${lastName}`, "utf8").toString("base64url");
}

/**
 * The channel name a page token continues after. Throws "invalid-input" for
 * a token this server did not issue.
 */
export function readPageToken(token: string): string {
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  if (!text.startsWith("v1:") || !isValidName(text.slice(3))) {
    throw new ChatError(
      "invalid-input",
      `page_token ${quote(token)} is not one this server issued: pass next_page_token as it came, or none for the first page`,
    );
  }
  return text.slice(3);
}
