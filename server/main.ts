import { type ChatServer, createChatServer } from "./chat-server.js";
import { ConfigError } from "./ops/config-error.js";
import { createLogger, flushLog } from "./ops/logger.js";
import { parseConfig } from "./ops/parse-config.js";
import type { ServerConfig } from "./ops/server-settings.js";
import { hostPort } from "./transport/listen-on.js";

/**
 * Starts the chat server from flags and environment, and shuts it down
 * gracefully on SIGINT or SIGTERM, exiting 0 once every connection is gone.
 * A bad configuration exits 2 with a message before anything starts.
 */
async function main(): Promise<void> {
  // Under Node 26 the process is otherwise named after its main thread
  // ("node-MainThread"): this name is what ps, pgrep and pkill find.
  process.title = "chat-server";
  let config: ServerConfig;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      const help = error.message.startsWith("Usage:");
      (help ? process.stdout : process.stderr).write(help ? error.message : `chat-server: ${error.message}\n`);
      process.exit(help ? 0 : 2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, undefined, { burstPerSecond: config.logBurst });
  let server: ChatServer;
  try {
    server = createChatServer(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`chat-server: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "signal received");
    server.shutdown().then(
      async () => {
        await flushLog(logger);
        process.exit(0);
      },
      async (err: unknown) => {
        logger.fatal({ err }, "shutdown failed");
        await flushLog(logger);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  // SIGHUP reloads the TLS certificate (a renewed one, say); files that are
  // not usable leave the one in use, and say why.
  if (config.tlsCert !== undefined)
    process.on("SIGHUP", () => {
      try {
        if (!server.reloadTls()) logger.info("SIGHUP: no TLS certificate to reload");
      } catch (err) {
        logger.error({ error: err instanceof Error ? err.message : String(err) }, "TLS certificate not reloaded");
      }
    });
  try {
    const address = await server.listen();
    if (!logger.isLevelEnabled("info")) {
      // The log says where the server listens, unless it is quieter than that.
      const web = server.webAddress;
      process.stderr.write(`chat-server: listening on ${hostPort(address)}${web ? `, chat page at http://${hostPort(web)}/` : ""}\n`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`chat-server: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err, host: config.host, port: config.port }, "cannot start");
    await flushLog(logger);
    process.exit(1);
  }
}

await main();
