import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { runChatCli } from "./chat-cli.js";
import { tokenSubject } from "./sdk/token-subject.js";
import { parseServerUrl } from "./server-url.js";

const program = new Command("chat-client")
  .description("A terminal client for the chat server. Reads commands from stdin; /help lists them.")
  .option("-u, --user <name>", "the username to connect as (default: the user a --token names)")
  .addOption(
    new Option("-s, --server <url>", "the server: http(s)://host:port, or host:port")
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
  .addOption(new Option("--token <jwt>", "a signed token for a server that asks for one (--jwt-*); sent instead of the username").env("CHAT_TOKEN"))
  .addOption(new Option("--ca <file>", "PEM certificate(s) to trust for an https:// server, such as a private CA").env("CHAT_CA"))
  .option("--script", "read commands from stdin without a prompt (the default when stdin is not a terminal)")
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "chat-client: ")) })
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  .parse();

const opts = program.opts<{ user?: string; server: string; script?: boolean; token?: string; ca?: string }>();
const user = opts.user ?? (opts.token === undefined ? undefined : tokenSubject(opts.token));
if (user === undefined) {
  process.stderr.write(
    opts.token === undefined
      ? "chat-client: give the username to connect as with --user <name>, or a signed token with --token <jwt> (or CHAT_TOKEN): it names the user\n"
      : "chat-client: the token (--token or CHAT_TOKEN) names no user that can be read (its sub claim): give the username with --user <name>\n",
  );
  process.exit(2);
}
let ca: Buffer | undefined;
if (opts.ca !== undefined) {
  try {
    ca = readFileSync(opts.ca);
  } catch (error) {
    process.stderr.write(`chat-client: --ca (CHAT_CA) ${opts.ca}: cannot read it (${error instanceof Error ? error.message : String(error)})\n`);
    process.exit(2);
  }
}
const code = await runChatCli({
  username: user,
  serverUrl: opts.server,
  clientOptions: { ...(opts.token === undefined ? {} : { token: opts.token }), ...(ca === undefined ? {} : { ca }) },
  input: process.stdin,
  output: process.stdout,
  interactive: !opts.script && process.stdin.isTTY === true,
});
process.exit(code);
