import { createInterface } from "node:readline";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ChannelType, type ChatMessage } from "../gen/chat/v1/chat_pb.js";
import { type ChatClient, type ChatClientOptions, createChatClient, describeError } from "./chat-client.js";
import { createCommandRunner } from "./chat-commands.js";

/** What the terminal client needs to run. */
export interface ChatCliOptions {
  username: string;
  /** The server's base URL, such as http://127.0.0.1:50051. */
  serverUrl: string;
  /** A signed token to send, and a CA to trust (see ChatClientOptions). */
  clientOptions?: ChatClientOptions;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Shows a prompt and keeps it below incoming messages. */
  interactive: boolean;
  /** A client to use instead of a new one, for tests. */
  client?: ChatClient;
}

/**
 * Formats a received message as one line: time (UTC), channel ("#group" or
 * "@user" for a direct message to that user), sender, text.
 */
export function formatMessage(message: ChatMessage): string {
  const time = message.sentAt ? timestampDate(message.sentAt).toISOString().slice(11, 19) : "--:--:--";
  const channel = message.channel;
  const where = channel?.type === ChannelType.GROUP ? `#${channel.name}` : `@${channel?.name ?? "?"}`;
  return `${time} ${where} <${message.sender}> ${message.text}`;
}

/**
 * Runs the terminal client: connects as the user, prints what arrives, and
 * runs one command per input line, each to completion before the next, so a
 * script's lines take effect in order. Errors print as one line and the
 * client goes on. Resolves with the exit code: 0 after /quit or the end of
 * input, 1 when the stream could not open or ended on its own.
 */
export async function runChatCli(options: ChatCliOptions): Promise<number> {
  const { username, output, interactive } = options;
  const client = options.client ?? createChatClient(options.serverUrl, username, options.clientOptions);
  const rl = createInterface({ input: options.input, output: interactive ? output : undefined, terminal: interactive });
  // Iterate from the start: lines that arrive before the iterator exists are
  // dropped, and piped input arrives at once.
  const lines = rl[Symbol.asyncIterator]();
  rl.setPrompt(`${username}> `);
  const print = (line: string) => {
    if (interactive) {
      output.write(`\r\x1b[K${line}\n`);
      rl.prompt(true);
    } else {
      output.write(`${line}\n`);
    }
  };

  const abort = new AbortController();
  let quitting = false;
  const stream = watchStream(client, username, abort.signal, print, () => quitting);
  const streamEnded = stream.ended;
  const first = await Promise.race([stream.connected.then(() => undefined), streamEnded]);
  if (first !== undefined) {
    rl.close();
    return first;
  }

  const run = createCommandRunner(client, print);

  if (interactive) rl.prompt();
  let code: number | undefined;
  for (;;) {
    const next = await Promise.race([lines.next(), streamEnded]);
    if (typeof next === "number") {
      code = next;
      break;
    }
    if (next.done) break;
    try {
      if (!(await run(next.value))) break;
    } catch (error) {
      print(`! ${describeError(error)}`);
    }
    if (interactive) rl.prompt();
  }
  rl.close();
  if (code !== undefined) return code;
  quitting = true;
  abort.abort();
  return streamEnded;
}

/**
 * Opens the user's stream and prints what arrives. connected resolves at the
 * Connected event; ended resolves with the exit code once the stream ends (0
 * when the client was quitting, 1 when the server ended it).
 */
function watchStream(client: ChatClient, username: string, signal: AbortSignal, print: (line: string) => void, quitting: () => boolean) {
  let onConnected: () => void = () => {};
  const connected = new Promise<void>((resolve) => {
    onConnected = resolve;
  });
  const ended = (async (): Promise<number> => {
    try {
      for await (const res of client.connect({ username }, { signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") {
            print(`* connected as ${event.kind.value.username}`);
            onConnected();
          } else if (event.kind.case === "message") {
            print(formatMessage(event.kind.value));
          }
        }
      }
      if (quitting()) return 0;
      print("* stream ended by the server");
      return 1;
    } catch (error) {
      if (quitting()) return 0;
      print(`* stream ended: ${describeError(error)}`);
      return 1;
    }
  })();
  return { connected, ended };
}
