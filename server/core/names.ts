import { ChatError, quote } from "./chat-error.js";

/** The longest user or group name, in characters (all of them ASCII). */
export const maxNameLength = 32;

/** The longest message text, in bytes of UTF-8. */
export const maxTextBytes = 4096;

const namePattern = /^[A-Za-z0-9_.-]{1,32}$/;

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

/**
 * Returns the text's size in bytes of UTF-8, or throws an "invalid-input"
 * ChatError when it is empty or larger than {@link maxTextBytes}.
 */
export function measureText(text: string): number {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes === 0) {
    throw new ChatError("invalid-input", "text must not be empty");
  }
  if (bytes > maxTextBytes) {
    throw new ChatError("invalid-input", `text is ${bytes} bytes of UTF-8; at most ${maxTextBytes} are allowed`);
  }
  return bytes;
}
