import { Writable } from "node:stream";
import { type ChatServer, createChatServer } from "../../server/chat-server.js";
import { createLogger } from "../../server/ops/logger.js";
import { defaultConfig, type ServerConfig } from "../../server/ops/server-settings.js";

/** A chat server on a free loopback port, with its log kept in memory. */
export interface TestServer {
  readonly server: ChatServer;
  readonly port: number;
  readonly baseUrl: string;
  /** The address of the chat page and the browser protocols. */
  readonly webUrl: string;
  /** Every log line, parsed. */
  readonly logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

/**
 * Starts the same server that main runs, on port 0, with the given settings
 * over the defaults.
 */
export async function startTestServer(overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line !== "") logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const config: ServerConfig = { ...defaultConfig, port: 0, webPort: 0, shutdownGraceMs: 1000, ...overrides };
  const server = createChatServer(config, createLogger("debug", sink, { burstPerSecond: config.logBurst }));
  const address = await server.listen();
  return {
    server,
    port: address.port,
    baseUrl: `${config.tlsCert === undefined ? "http" : "https"}://127.0.0.1:${address.port}`,
    webUrl: `http://127.0.0.1:${server.webAddress?.port ?? 0}`,
    logs,
    stop: () => server.shutdown(),
  };
}
