import { Code, ConnectError } from "@connectrpc/connect";
import type { ChatMessage } from "../../gen/chat/v1/chat_pb.js";
import { isConnectionLost } from "./is-connection-lost.js";
import type { ChatClient } from "./resumable-session.js";

/** How a send is tried again. */
export interface SendRetryOptions {
  /** How many tries in all, the first included; 4 unless given. */
  tries?: number;
  /** How long one try may take before it counts as timed out, in milliseconds; 10 s unless given. */
  timeoutMs?: number;
  /** The wait before the given retry (1 for the first), in milliseconds; 200 ms doubling unless given. */
  delayMs?: (retry: number) => number;
  /** Stops the send: the try under way is cancelled and no other follows. */
  signal?: AbortSignal;
  /** Called before each retry, with why the try before it failed. */
  onRetry?: (retry: number, error: unknown) => void;
}

/**
 * Makes a request id for SendMessageRequest.request_id: 128 random bits in
 * hex. Not crypto.randomUUID, which a browser offers only to a secure
 * context, and the page may be served over plain HTTP on another host.
 */
export function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Tells whether a failed send may have been lost on the way, either way,
 * so that trying it again with the same request id is the way to know: it
 * timed out (DEADLINE_EXCEEDED, the server's or this side's), the server
 * was unavailable, or the connection failed under it (see
 * isConnectionLost). A send cancelled through the signal is not retried.
 */
export function isRetryableSend(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return false;
  return ConnectError.from(error).code === Code.DeadlineExceeded || isConnectionLost(error, signal);
}

/**
 * Sends a message exactly once, as far as the server can tell: every try
 * carries the same fresh request_id, so a retry of a send that did reach
 * the server returns the first try's message and delivers nothing again.
 * A try that timed out, found the server unavailable or lost its
 * connection (see isRetryableSend) is tried again after a backoff, up to
 * the given number of tries; any other error, or the last try's, rejects.
 * Resolves with the message as the server delivered it (its id and
 * sent_at), or undefined from a server older than that field. The one
 * implementation of sending for the terminal client and the page.
 */
export async function sendWithRetry(
  client: Pick<ChatClient, "sendMessage">,
  message: { channel: string; text: string },
  options: SendRetryOptions = {},
): Promise<ChatMessage | undefined> {
  const { tries = 4, timeoutMs = 10_000, delayMs = (retry: number) => 200 * 2 ** (retry - 1), signal, onRetry } = options;
  const request = { ...message, requestId: newRequestId() };
  for (let retry = 0; ; retry++) {
    try {
      const response = await client.sendMessage(request, { timeoutMs, ...(signal === undefined ? {} : { signal }) });
      return response.message;
    } catch (error) {
      if (retry + 1 >= tries || !isRetryableSend(error, signal)) throw error;
      onRetry?.(retry + 1, error);
      await new Promise((resolve) => setTimeout(resolve, delayMs(retry + 1)));
      if (signal?.aborted === true) throw error;
    }
  }
}
