import { ConnectError } from "@connectrpc/connect";
import type { ChatClient } from "../../client/chat-client.js";
import type { ChatMessage, ConnectResponse } from "../../gen/chat/v1/chat_pb.js";

/** An open Connect stream, with what it has received so far. */
export interface OpenStream {
  readonly username: string;
  /** Messages received, in order. */
  readonly messages: ChatMessage[];
  /** How many ConnectResponses carried them. */
  readonly responses: number;
  /** Resolves when the stream ends: undefined for OK, else its error. */
  readonly ended: Promise<ConnectError | undefined>;
  /** Resolves once at least n messages have arrived. */
  waitForMessages(n: number, timeoutMs?: number): Promise<ChatMessage[]>;
  /** Cancels the stream from the client side. */
  cancel(): void;
}

/**
 * Opens a Connect stream and resolves once its Connected event has arrived,
 * after checking that it came first and names the user. Rejects with the
 * stream's error when it fails before that.
 */
export async function openStream(client: ChatClient, username: string): Promise<OpenStream> {
  const abort = new AbortController();
  const messages: ChatMessage[] = [];
  let responses = 0;
  let wake: (() => void) | undefined;
  let onConnected!: () => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const ended = (async () => {
    try {
      let first = true;
      for await (const res of client.connect({ username }, { signal: abort.signal }) as AsyncIterable<ConnectResponse>) {
        responses++;
        for (const event of res.events) {
          if (first) {
            first = false;
            if (event.kind.case !== "connected" || event.kind.value.username !== username) {
              throw new Error(`first event is not Connected for ${username}: ${JSON.stringify(event.kind)}`);
            }
            onConnected();
            continue;
          }
          if (event.kind.case !== "message") {
            throw new Error(`unexpected event after Connected: ${event.kind.case}`);
          }
          messages.push(event.kind.value);
        }
        wake?.();
      }
      return undefined;
    } catch (error) {
      if (error instanceof Error && !(error instanceof ConnectError) && !abort.signal.aborted) {
        throw error;
      }
      return ConnectError.from(error);
    } finally {
      wake?.();
    }
  })();
  const first = await Promise.race([connected.then(() => "connected" as const), ended]);
  if (first !== "connected") {
    throw first ?? new Error(`stream of ${username} ended before Connected`);
  }
  return {
    username,
    messages,
    get responses() {
      return responses;
    },
    ended,
    async waitForMessages(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      let finished = false;
      void ended.then(() => (finished = true));
      while (messages.length < n) {
        if (finished) throw new Error(`stream of ${username} ended with ${messages.length} of ${n} messages`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${username} got ${messages.length} of ${n} messages in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(left, 50));
        });
      }
      return messages;
    },
    cancel() {
      abort.abort();
    },
  };
}
