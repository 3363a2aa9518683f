import { ChatError } from "./chat-error.js";

/** The longest message text, in bytes of UTF-8. */
export const maxTextBytes = 4096;

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
