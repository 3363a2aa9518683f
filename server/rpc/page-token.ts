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

// A history page token binds its cursor to the caller and the channel it
// was issued for: another caller's token, or one for another channel, is
// refused rather than read as a place in this conversation.

/** The token of the history page after the one a backend's cursor ends. */
export function historyPageToken(caller: string, channel: string, cursor: string): string {
  return Buffer.from(`m1:${caller}:${channel}:${cursor}`, "utf8").toString("base64url");
}

/**
 * The backend's cursor a history page token carries. Throws "invalid-input"
 * for a token not issued for this caller and channel.
 */
export function readHistoryPageToken(token: string, caller: string, channel: string): string {
  const text = /^[A-Za-z0-9_-]{1,256}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  const prefix = `m1:${caller}:${channel}:`;
  const cursor = text.slice(prefix.length);
  if (!text.startsWith(prefix) || !/^[0-9,-]{1,96}$/.test(cursor)) {
    throw new ChatError(
      "invalid-input",
      `page_token ${quote(token)} was not issued for ${quote(caller)}'s history of ${quote(channel)}: pass next_page_token as it came, or none for the latest page`,
    );
  }
  return cursor;
}
