import { ChannelType, type ChatMessage } from "../gen/chat/v1/chat_pb.js";
import type { ChatClient } from "./chat-client.js";
import { describeError } from "./sdk/describe-error.js";
import { type HistoryPage, readHistory } from "./sdk/read-history.js";
import { sendWithRetry } from "./sdk/send-with-retry.js";
import type { Transcript } from "./transcript.js";

/** How many messages /join shows, and /history when not told. */
export const defaultHistoryCount = 20;

/** The most messages /history shows at once. */
const maxHistoryCount = 1000;

/** The help text of the terminal client, one command a line. */
export const helpText = [
  "commands:",
  "  /create <group>        create a group and join it",
  "  /join <group>          join a group, and show its latest messages",
  "  /leave <group>         leave a group",
  "  /list                  list online users and groups",
  "  /who <group>           list the members of a group you are in",
  "  /to <channel>          send plain lines to this user or group from now on",
  "  /send <channel> <text> send one message to a user or group",
  "  /history [n]           show the last n messages (20) of the current channel (see /to)",
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
  "/who": "/who <group>",
  "/to": "/to <channel>",
  "/send": "/send <channel> <text>",
  "/sleep": "/sleep <ms>",
};

/** The commands that make calls and print about them. */
const calls: Record<string, (client: ChatClient, arg: string, print: (line: string) => void, transcript: Transcript) => Promise<void>> = {
  async "/create"(client, name, print, transcript) {
    await client.createGroupChat({ name });
    transcript.inGroup(name, true);
    print(`* created group #${name}`);
  },
  async "/join"(client, name, print, transcript) {
    await client.joinGroupChat({ name });
    transcript.inGroup(name, true);
    // The join stands even when history cannot be read (a server with history off).
    let history: HistoryPage;
    try {
      history = await readHistory(client, name, defaultHistoryCount);
    } catch (error) {
      print(`* joined #${name}`);
      print(`! no history of #${name}: ${describeError(error)}`);
      return;
    }
    print(`* joined #${name}`);
    // A message sent since the join may have come on the stream already: it printed there.
    const { messages, olderToken } = history;
    const earlier = messages.filter((m) => !transcript.has(m.id));
    if (earlier.length > 0) transcript.history(historyHeading(name, earlier, olderToken !== ""), earlier);
  },
  async "/leave"(client, name, print, transcript) {
    await client.leaveGroupChat({ name });
    transcript.inGroup(name, false);
    print(`* left #${name}`);
  },
  async "/list"(client, _arg, print) {
    const { channels, nextPageToken } = await client.listChannels({});
    const names = channels.map((c) => (c.type === ChannelType.GROUP ? `#${c.name}` : `@${c.name}`));
    const count = `${channels.length}${nextPageToken === "" ? "" : " (the first page; more exist)"}`;
    print(`* ${count} ${channels.length === 1 ? "channel" : "channels"}${names.length > 0 ? `: ${names.join(" ")}` : ""}`);
  },
  async "/who"(client, group, print) {
    print(`* #${group}: ${(await listMembers(client, group)).join(", ")}`);
  },
};

/** The line above history: whose ("#group" or "@user"), how many, and whether more is kept. */
function historyHeading(channel: string, messages: ChatMessage[], more: boolean): string {
  const where = `${messages[0]?.channel?.type === ChannelType.GROUP ? "#" : "@"}${channel}`;
  const count = messages.length === 1 ? "message" : `${messages.length} messages`;
  return `* history of ${where}: the last ${count}${more ? " (more before: /history <n>)" : ""}`;
}

/**
 * Creates the runner of the terminal client's input lines: a command, or text
 * for the current channel. It resolves with false for /quit, true otherwise;
 * a failed call rejects, and the client prints why.
 */
export function createCommandRunner(client: ChatClient, print: (line: string) => void, transcript: Transcript): (line: string) => Promise<boolean> {
  let target: string | undefined;
  /** Sends once, retrying a send that timed out or found the server away (see sendWithRetry). */
  const send = async (channel: string, text: string) => {
    const message = await sendWithRetry(
      client,
      { channel, text },
      { onRetry: (_retry, error) => print(`* retrying the send to ${channel} (${describeError(error)})`) },
    );
    transcript.sent(channel, message);
    print(`* sent to ${channel}`);
  };
  return async (line) => {
    const trimmed = line.trim();
    if (trimmed === "") return true;
    if (!trimmed.startsWith("/")) {
      if (target === undefined) {
        print("! no current channel: pick one with /to <channel>, or use /send <channel> <text>");
        return true;
      }
      await send(target, line);
      return true;
    }
    const [command = "", ...rest] = trimmed.split(/\s+/);
    const arg = rest[0] ?? "";
    const usage = usages[command];
    if (usage !== undefined && arg === "") {
      print(`! ${command} needs an argument: ${usage}`);
      return true;
    }
    const call = calls[command];
    if (call !== undefined) {
      await call(client, arg, print, transcript);
      return true;
    }
    switch (command) {
      case "/help":
        print(helpText);
        return true;
      case "/quit":
        return false;
      case "/to":
        target = arg;
        print(`* sending to ${arg}`);
        return true;
      case "/send": {
        // The text is the rest of the line as typed, inner spaces kept.
        const text = trimmed.replace(/^\/send\s+\S+\s?/, "");
        await send(arg, text);
        return true;
      }
      case "/history":
        await showHistory(client, target, arg, print, transcript);
        return true;
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
}

/** Runs /history [n]: the last n messages of the current channel, oldest first. */
async function showHistory(client: ChatClient, target: string | undefined, arg: string, print: (line: string) => void, transcript: Transcript) {
  if (arg !== "" && (!/^\d+$/.test(arg) || Number(arg) < 1 || Number(arg) > maxHistoryCount)) {
    print(`! /history takes a count of messages from 1 to ${maxHistoryCount}, got ${JSON.stringify(arg)}`);
    return;
  }
  if (target === undefined) {
    print("! no current channel: pick one with /to <channel>");
    return;
  }
  const { messages, olderToken } = await readHistory(client, target, arg === "" ? defaultHistoryCount : Number(arg));
  if (messages.length === 0) print(`* no history of ${target}`);
  else transcript.history(historyHeading(target, messages, olderToken !== ""), messages);
}

/** Lists every member of a group, following the pages to the last. */
async function listMembers(client: ChatClient, group: string): Promise<string[]> {
  const members: string[] = [];
  let pageToken = "";
  do {
    const page = await client.listGroupMembers({ group, pageToken });
    members.push(...page.usernames);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return members;
}
