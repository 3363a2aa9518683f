import { ChannelType } from "../gen/chat/v1/chat_pb.js";
import type { ChatClient } from "./chat-client.js";

/** The help text of the terminal client, one command a line. */
export const helpText = [
  "commands:",
  "  /create <group>        create a group and join it",
  "  /join <group>          join a group",
  "  /leave <group>         leave a group",
  "  /list                  list online users and groups",
  "  /who <group>           list the members of a group you are in",
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
  "/who": "/who <group>",
  "/to": "/to <channel>",
  "/send": "/send <channel> <text>",
  "/sleep": "/sleep <ms>",
};

/** The commands that make one call and print one line about it. */
const calls: Record<string, (client: ChatClient, arg: string) => Promise<string>> = {
  async "/create"(client, name) {
    await client.createGroupChat({ name });
    return `* created group #${name}`;
  },
  async "/join"(client, name) {
    await client.joinGroupChat({ name });
    return `* joined #${name}`;
  },
  async "/leave"(client, name) {
    await client.leaveGroupChat({ name });
    return `* left #${name}`;
  },
  async "/list"(client) {
    const { channels, nextPageToken } = await client.listChannels({});
    const names = channels.map((c) => (c.type === ChannelType.GROUP ? `#${c.name}` : `@${c.name}`));
    const count = `${channels.length}${nextPageToken === "" ? "" : " (the first page; more exist)"}`;
    return `* ${count} ${channels.length === 1 ? "channel" : "channels"}${names.length > 0 ? `: ${names.join(" ")}` : ""}`;
  },
  async "/who"(client, group) {
    return `* #${group}: ${(await listMembers(client, group)).join(", ")}`;
  },
};

/**
 * Creates the runner of the terminal client's input lines: a command, or text
 * for the current channel. It resolves with false for /quit, true otherwise;
 * a failed call rejects, and the client prints why.
 */
export function createCommandRunner(client: ChatClient, print: (line: string) => void): (line: string) => Promise<boolean> {
  let target: string | undefined;
  return async (line) => {
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
    const call = calls[command];
    if (call !== undefined) {
      print(await call(client, arg));
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
