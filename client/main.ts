import { Command } from "commander";
import { runChatCli } from "./chat-cli.js";

const program = new Command("chat-client")
  .description("A terminal client for the chat server. Reads commands from stdin; /help lists them.")
  .requiredOption("-u, --user <name>", "the username to connect as")
  .option("-s, --server <url>", "the server's base URL", process.env.CHAT_SERVER ?? "http://127.0.0.1:50051")
  .option("--script", "read commands from stdin without a prompt (the default when stdin is not a terminal)")
  .parse();

const opts = program.opts<{ user: string; server: string; script?: boolean }>();
const code = await runChatCli({
  username: opts.user,
  serverUrl: opts.server,
  input: process.stdin,
  output: process.stdout,
  interactive: !opts.script && process.stdin.isTTY === true,
});
process.exit(code);
