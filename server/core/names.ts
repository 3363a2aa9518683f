import { ChatError, quote } from "./chat-error.js";

/** The longest user or group name, in characters (all of them ASCII). */
export const maxNameLength = 32;

// The characters a name may use, as a character class.
const nameCharacters = "A-Za-z0-9_.\\-";
const namePattern = new RegExp(`^[${nameCharacters}]{1,${maxNameLength}}$`);

/** The rule for names as an HTML input's pattern attribute: the page applies it, so it never drifts from this one. */
export const nameInputPattern = `[${nameCharacters}]{1,${maxNameLength}}`;

/**
 * Reports whether a string is a well-formed user or group name: 1 to 32 ASCII
 * letters, digits, "_", "-" or ".". Names travel in HTTP/2 header values,
 * which are ASCII, hence the narrow alphabet.
 */
export function isValidName(name: string): boolean {
  return namePattern.test(name);
}

/**
 * Throws an "invalid-input" ChatError unless the name is well formed. The
 * message says which rule was broken and quotes the name (shortened when long),
 * so that a client can tell what to fix.
 */
export function assertValidName(name: string, what: "username" | "group name" | "channel"): void {
  if (namePattern.test(name)) {
    return;
  }
  if (name.length === 0) {
    throw new ChatError("invalid-input", `${what} must not be empty`);
  }
  if (name.length > maxNameLength) {
    throw new ChatError("invalid-input", `${what} ${quote(name)} is ${name.length} characters long; at most ${maxNameLength} are allowed`);
  }
  throw new ChatError("invalid-input", `${what} ${quote(name)} may only contain ASCII letters, digits, "_", "-" and "."`);
}
