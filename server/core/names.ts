import { ChatError, quote } from "./chat-error.js";
import { maxNameLength, nameInputPattern } from "./name-rule.js";

const namePattern = new RegExp(`^${nameInputPattern}$`);

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
