import { createInterface } from "node:readline";
import { ChannelType, type ChatMessage } from "../gen/chat/v1/chat_pb.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createChatClient, describeError, type ChatClient } from "./chat-client.js";

/** What the terminal client needs to run. */
export interface ChatCliOptions {
  username: string;
  /** The server's base URL, such as http://127.0.0.1:50051. */
  serverUrl: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Shows a prompt and keeps it below incoming messages. */
  interactive: boolean;
  /** A client to use instead of a new one, for tests. */
  client?: ChatClient;
}

/** The help text of the terminal client, one command a line. */
export const helpText = [
  "commands:",
  "  /create <group>        create a group and join it",
  "  /join <group>          join a group",
  "  /leave <group>         leave a group",
  "  /list                  list online users and groups",
  "  /to <channel>          send plain lines to this user or group from now on",
  "  /send <channel> <text> send one message to a user or group",
  "  /sleep <ms>            wait, for scripts",
  "  /help                  show this help",
  "  /quit                  disconnect and exit",
  "  <text>                 send to the current channel (see /to)",
].join("\n");

/** The commands that need an argument, with how to use them. */
const usages: Record<string, string> = {
  "/create": "/create <group>",
  "/join": "/join <group>",
  "/leave": "/leave <group>",
  "/to": "/to <channel>",
  "/send": "/send <channel> <text>",
  "/sleep": "/sleep <ms>",
};

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
  const client = options.client ?? createChatClient(options.serverUrl, username);
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
  let onConnected: () => void = () => {};
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const streamEnded = (async (): Promise<number> => {
    try {
      for await (const res of client.connect({ username }, { signal: abort.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") {
            print(`* connected as ${event.kind.value.username}`);
            onConnected();
          } else if (event.kind.case === "message") {
            print(formatMessage(event.kind.value));
          }
        }
      }
      if (quitting) return 0;
      print("* stream ended by the server");
      return 1;
    } catch (error) {
      if (quitting) return 0;
      print(`* stream ended: ${describeError(error)}`);
      return 1;
    }
  })();

  const first = await Promise.race([connected.then(() => undefined), streamEnded]);
  if (first !== undefined) {
    rl.close();
    return first;
  }

  let target: string | undefined;
  const run = async (line: string): Promise<boolean> => {
    const trimmed = line.trim();
    if (trimmed === "") return true;
    if (!trimmed.startsWith("/")) {
      if (target === undefined) {
        print("! no current channel: pick one with /to <channel>, or use /send <channel> <text>");
        return true;
      }
      await client.sendMessage({ channel: target, text: line });
      print(`* sent to ${target}`);
      return true;
    }
    const [command = "", ...rest] = trimmed.split(/\s+/);
    const arg = rest[0] ?? "";
    const usage = usages[command];
    if (usage !== undefined && arg === "") {
      print(`! ${command} needs an argument: ${usage}`);
      return true;
    }
    switch (command) {
      case "/help":
        print(helpText);
        return true;
      case "/quit":
        return false;
      case "/create":
        await client.createGroupChat({ name: arg });
        print(`* created group #${arg}`);
        return true;
      case "/join":
        await client.joinGroupChat({ name: arg });
        print(`* joined #${arg}`);
        return true;
      case "/leave":
        await client.leaveGroupChat({ name: arg });
        print(`* left #${arg}`);
        return true;
      case "/list": {
        const { channels, nextPageToken } = await client.listChannels({});
        const names = channels.map((c) => (c.type === ChannelType.GROUP ? `#${c.name}` : `@${c.name}`));
        const count = `${channels.length}${nextPageToken === "" ? "" : " (the first page; more exist)"}`;
        print(`* ${count} ${channels.length === 1 ? "channel" : "channels"}${names.length > 0 ? `: ${names.join(" ")}` : ""}`);
        return true;
      }
      case "/to":
        target = arg;
        print(`* sending to ${arg}`);
        return true;
      case "/send": {
        // The text is the rest of the line as typed, inner spaces kept.
        const text = trimmed.replace(/^\/send\s+\S+\s?/, "");
        await client.sendMessage({ channel: arg, text });
        print(`* sent to ${arg}`);
        return true;
      }
      case "/sleep": {
        const ms = Number(arg);
        if (!/^\d+$/.test(arg) || ms > 3_600_000) {
          print(`! /sleep takes a whole number of milliseconds up to 3600000, got ${JSON.stringify(arg)}`);
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, ms));
        return true;
      }
      default:
        print(`! unknown command ${command}: type /help for the list`);
        return true;
    }
  };

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
