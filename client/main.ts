import { Command, InvalidArgumentError, Option } from "commander";
import { runChatCli } from "./chat-cli.js";
import { parseServerUrl } from "./server-url.js";

const program = new Command("chat-client")
  .description("A terminal client for the chat server. Reads commands from stdin; /help lists them.")
  .requiredOption("-u, --user <name>", "the username to connect as")
  .addOption(
    new Option("-s, --server <url>", "the server: http://host:port, or host:port")
      .env("CHAT_SERVER")
      .default("http://127.0.0.1:50051")
      .argParser((value) => {
        try {
          return parseServerUrl(value);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      }),
  )
  .option("--script", "read commands from stdin without a prompt (the default when stdin is not a terminal)")
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "chat-client: ")) })
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
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
