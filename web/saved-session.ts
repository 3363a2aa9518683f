import type { SessionPlace } from "../client/sdk/resumable-session.js";

/** A session the tab had before a reload: its user, its place, and its groups. */
export interface SavedSession extends SessionPlace {
  username: string;
  /** The events after the count keep the groups, but nothing lists a user's groups: so they are saved too. */
  groups: string[];
}

const savedKey = "chat.resume";

/**
 * Keeps a session for the next page in this tab: on the plain web port a
 * page that goes away cannot say goodbye (HTTP/1.1 cancels by closing the
 * socket), so the server holds its session for the grace, and a fresh
 * Connect would find the name held. The resume token and the count go to
 * sessionStorage, which this tab alone reads, as the page goes away. The
 * caller never saves a session signed with a token: a token is never
 * stored, so a page that needed one signs in again.
 */
export function saveSession(saved: SavedSession): void {
  sessionStorage.setItem(savedKey, JSON.stringify(saved));
}

/** Takes the session the last page of this tab saved, if any, once: the next page finds only what this one saves as it goes. */
export function takeSavedSession(): SavedSession | undefined {
  const saved: unknown = JSON.parse(sessionStorage.getItem(savedKey) ?? "null");
  sessionStorage.removeItem(savedKey);
  return isSaved(saved) ? saved : undefined;
}

function isSaved(value: unknown): value is SavedSession {
  if (typeof value !== "object" || value === null) return false;
  const v: Record<string, unknown> = { ...value };
  return (
    typeof v.username === "string" &&
    typeof v.resumeToken === "string" &&
    typeof v.received === "number" &&
    typeof v.graceMs === "number" &&
    Array.isArray(v.groups) &&
    v.groups.every((g) => typeof g === "string")
  );
}
