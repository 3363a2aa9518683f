import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { type LogLevel, logLevels } from "./logger.js";

/** Everything the server can be told at start, with its unit in the name. */
export interface ServerConfig {
  host: string;
  port: number;
  queueLimit: number;
  /** Bytes of queued events (text plus about 100 bytes each) that may wait for one stream. */
  queueLimitBytes: number;
  /** Bytes that may wait in all the streams' queues together; past it, the largest are cut off. */
  maxQueuedBytes: number;
  /** How long a stream's response may wait for its client's flow-control window before it is cut off. */
  stallTimeoutMs: number;
  maxGroupsPerUser: number;
  /** Groups that may exist at once. */
  maxGroups: number;
  /** The default and the largest page of ListChannels. */
  listPageSize: number;
  /** Connections the gRPC port accepts at once; more are refused. */
  maxConnections: number;
  /** A connection with no open stream for this long is closed. */
  idleTimeoutMs: number;
  /** A connection that has not acknowledged the server's SETTINGS by then is closed. */
  settingsTimeoutMs: number;
  /** Bytes of request headers a connection may hold in open streams before it acknowledges SETTINGS. */
  unackedHeaderBytes: number;
  /** Bytes of unary and server-streaming request bodies not yet complete that one connection may hold. */
  maxPendingRequestBytes: number;
  /** Time a unary or server-streaming call has to send its whole request. */
  requestBodyTimeoutMs: number;
  /** The web port's limit for receiving a request's headers. */
  webHeadersTimeoutMs: number;
  /** The web port's limit for receiving a whole request. */
  webRequestTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  shutdownGraceMs: number;
  maxConcurrentStreams: number;
  maxSessionMemoryMb: number;
  readMaxBytes: number;
  logLevel: LogLevel;
  /** Log lines of one kind per second before the rest are summarised. */
  logBurst: number;
  /** The port of the Prometheus /metrics endpoint; none when undefined. */
  metricsPort?: number;
  /** Cluster mode: the URL of the Redis every node shares; in-memory when undefined. */
  redis?: string;
  /** Cluster mode: how long a node's lease lives without a refresh. */
  leaseMs: number;
  /** Cluster mode: how often a node looks for nodes whose lease ran out. */
  sweepMs: number;
  /** The port of the chat page and the browser protocols (HTTP/1.1); none when undefined. */
  webPort?: number;
  /** Whether plain gRPC calls take the lean path (see grpc-lean-path.ts), or all go through Connect. */
  leanPath: boolean;
  /** A PEM certificate chain file: with tlsKey, the gRPC port serves TLS, HTTP/2 and HTTP/1.1 by ALPN. */
  tlsCert?: string;
  /** The PEM private key file of tlsCert. */
  tlsKey?: string;
  /** Signed identities: the HMAC secret of tokens (HS256/384/512). */
  jwtSecret?: string;
  /** Signed identities: a PEM public key file (RSA, EC or Ed25519) that verifies tokens. */
  jwtPublicKey?: string;
  /** Signed identities: the URL of a JSON Web Key Set that verifies tokens. */
  jwksUrl?: string;
  /** The "iss" tokens must carry. */
  jwtIssuer?: string;
  /** An "aud" tokens must carry. */
  jwtAudience?: string;
  /** The claim of a token that names its user. */
  jwtUsernameClaim: string;
  /** Messages one user may send per second, sustained; 0 for no limit. */
  sendRate: number;
  /** Messages one user may send at once above sendRate. */
  sendBurst: number;
  /** Connections one IP address may hold on each port at once; 0 for no limit. */
  maxConnectionsPerIp: number;
  /** Connect attempts one IP address may make per second; 0 for no limit. */
  connectRatePerIp: number;
  /** Signed identities: refused tokens one IP address may present per minute before its calls are refused unchecked; 0 for no limit. */
  tokenFailuresPerIp: number;
  /** Origins (scheme://host:port) whose pages may call the server from a browser, besides the page's own. */
  webOrigin: string[];
  /** Host names the web port answers to, besides IP addresses and localhost. */
  webHost: string[];
  /** How long a session whose stream dropped is held for a resume; 0 ends it at once. */
  resumeGraceMs: number;
  /** Events a resumable session keeps after delivering them, to replay on a resume. */
  resumeHistory: number;
  /** Bytes of those events. */
  resumeHistoryBytes: number;
  /** Whether presence events (ChannelsChanged) are on. */
  presence: boolean;
  /** How often presence changes are published, coalesced. */
  presenceIntervalMs: number;
}

/**
 * The default cap on connections: what the process's file-descriptor limit
 * leaves after a reserve for everything else it opens (web sockets, Redis,
 * files), so that running out of descriptors never locks everyone out.
 */
function defaultMaxConnections(): number {
  let limit = 1024;
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isSafeInteger(soft) && soft > 0) limit = soft;
  } catch {
    // Not Linux: assume the common default of 1024.
  }
  return Math.max(16, Math.min(100_000, limit - 256));
}

/** The configuration used when no flag or variable says otherwise. */
export const defaultConfig: ServerConfig = {
  host: "127.0.0.1",
  port: 50051,
  queueLimit: 4096,
  queueLimitBytes: 4 * 1024 * 1024,
  maxQueuedBytes: 256 * 1024 * 1024,
  stallTimeoutMs: 30_000,
  maxGroupsPerUser: 1000,
  maxGroups: 100_000,
  listPageSize: 1000,
  maxConnections: defaultMaxConnections(),
  idleTimeoutMs: 300_000,
  settingsTimeoutMs: 5_000,
  unackedHeaderBytes: 64 * 1024,
  maxPendingRequestBytes: 4 * 1024 * 1024,
  requestBodyTimeoutMs: 10_000,
  webHeadersTimeoutMs: 10_000,
  webRequestTimeoutMs: 30_000,
  pingIntervalMs: 30_000,
  pingTimeoutMs: 10_000,
  shutdownGraceMs: 5_000,
  maxConcurrentStreams: 10_000,
  maxSessionMemoryMb: 10,
  readMaxBytes: 64 * 1024,
  logLevel: "info",
  logBurst: 100,
  leaseMs: 10_000,
  sweepMs: 2_000,
  webPort: 8080,
  leanPath: true,
  jwtUsernameClaim: "sub",
  sendRate: 0,
  sendBurst: 100,
  maxConnectionsPerIp: 0,
  connectRatePerIp: 0,
  tokenFailuresPerIp: 60,
  webOrigin: [],
  webHost: [],
  resumeGraceMs: 0,
  resumeHistory: 256,
  resumeHistoryBytes: 256 * 1024,
  presence: true,
  presenceIntervalMs: 250,
};

/**
 * A configuration the server cannot run with: a bad flag or variable, a port
 * already in use, a Redis that cannot be reached. Its message is one line
 * that names the flag and the value; main prints it and exits 2.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

/** A parser of URLs with one of the given schemes, such as "http" and "https". */
function urlWith(...schemes: string[]) {
  const expected = schemes.map((scheme) => `${scheme}://`).join(" or ");
  return (value: string): string => {
    let protocol: string;
    try {
      protocol = new URL(value).protocol;
    } catch {
      throw new InvalidArgumentError(`expected a ${schemes[0]}:// URL, got ${JSON.stringify(value)}`);
    }
    if (!schemes.includes(protocol.slice(0, -1))) {
      throw new InvalidArgumentError(`expected a ${expected} URL, got ${JSON.stringify(value)}`);
    }
    return value;
  };
}

const httpUrl = urlWith("http", "https");

/** An https:// URL, or http:// on loopback: keys fetched in the clear could be swapped on the way. */
function jwksUrl(value: string): string {
  const url = new URL(httpUrl(value));
  if (url.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    throw new InvalidArgumentError(`expected an https:// URL (http:// only on loopback), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A parser of a comma-separated list, each item read by parse. */
function list(parse: (value: string) => string) {
  return (value: string): string[] =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "")
      .map(parse);
}

function origin(value: string): string {
  const url = new URL(httpUrl(value));
  if (url.origin !== value.replace(/\/$/, ""))
    throw new InvalidArgumentError(`expected an origin such as https://chat.example.com, got ${JSON.stringify(value)}`);
  return url.origin;
}

function hostName(value: string): string {
  if (!/^[a-z0-9.-]+$/i.test(value)) throw new InvalidArgumentError(`expected a host name such as chat.example.com, got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}
const redisUrl = urlWith("redis", "rediss");

/** The environment variable of each option that has one, and how to read its value. */
type EnvTable = Map<string, { name: string; parse: (value: string) => unknown }>;

/**
 * Returns a function that makes an option whose environment variable is
 * recorded in the table. Commander reads variables from process.env itself;
 * the server's own environment is applied after parsing instead, so that
 * tests can pass one.
 */
function optionsWithEnv(table: EnvTable) {
  return (flags: string, description: string, env: string, parse?: (value: string) => unknown): Option => {
    const opt = new Option(flags, `${description} [env ${env}]`);
    table.set(opt.attributeName(), { name: env, parse: parse ?? ((v: string) => v) });
    if (parse) opt.argParser(parse);
    return opt;
  };
}

/**
 * Declares every flag, its variable, its parser and its default. Long, being
 * a table: one entry per flag.
 */
// biome-ignore lint/complexity/noExcessiveLinesPerFunction: a table with one entry per flag.
function createProgram(option: ReturnType<typeof optionsWithEnv>): Command {
  const d = defaultConfig;
  return new Command("chat-server")
    .description("A real-time chat backend spoken over gRPC.")
    .addOption(option("--host <address>", "address to listen on", "HOST").default(d.host))
    .addOption(option("--port <n>", "TCP port; 0 picks a free one", "PORT", integer(0, 65535)).default(d.port))
    .addOption(
      option("--queue-limit <n>", "events that may wait for one stream before it is cut off", "QUEUE_LIMIT", integer(1, 1_000_000)).default(d.queueLimit),
    )
    .addOption(
      option(
        "--queue-limit-bytes <n>",
        "bytes of events that may wait for one stream before it is cut off",
        "QUEUE_LIMIT_BYTES",
        integer(4096, 1 << 30),
      ).default(d.queueLimitBytes),
    )
    .addOption(
      option(
        "--max-queued-bytes <n>",
        "bytes that may wait in all streams' queues together; past it the largest are cut off",
        "MAX_QUEUED_BYTES",
        integer(65536, 64 * 2 ** 30),
      ).default(d.maxQueuedBytes),
    )
    .addOption(
      option(
        "--stall-timeout-ms <n>",
        "time a response may wait for the client's flow-control window before the stream is cut off",
        "STALL_TIMEOUT_MS",
        integer(100, 3_600_000),
      ).default(d.stallTimeoutMs),
    )
    .addOption(
      option("--max-groups-per-user <n>", "groups one user may be a member of", "MAX_GROUPS_PER_USER", integer(1, 1_000_000)).default(d.maxGroupsPerUser),
    )
    .addOption(option("--max-groups <n>", "groups that may exist at once", "MAX_GROUPS", integer(1, 100_000_000)).default(d.maxGroups))
    .addOption(
      option("--list-page-size <n>", "the default and the largest page of ListChannels", "LIST_PAGE_SIZE", integer(1, 100_000)).default(d.listPageSize),
    )
    .addOption(
      option(
        "--max-connections <n>",
        "connections the gRPC port accepts at once (default: the file-descriptor limit less 256)",
        "MAX_CONNECTIONS",
        integer(1, 10_000_000),
      ).default(d.maxConnections),
    )
    .addOption(
      option("--idle-timeout-ms <n>", "close a connection that has had no open stream this long", "IDLE_TIMEOUT_MS", integer(1000, 86_400_000)).default(
        d.idleTimeoutMs,
      ),
    )
    .addOption(
      option(
        "--settings-timeout-ms <n>",
        "close a connection that has not acknowledged the server's SETTINGS by then",
        "SETTINGS_TIMEOUT_MS",
        integer(100, 600_000),
      ).default(d.settingsTimeoutMs),
    )
    .addOption(
      option(
        "--unacked-header-bytes <n>",
        "request header bytes a connection may hold in open streams before it acknowledges SETTINGS",
        "UNACKED_HEADER_BYTES",
        integer(16 * 1024, 1 << 30),
      ).default(d.unackedHeaderBytes),
    )
    .addOption(
      option(
        "--max-pending-request-bytes <n>",
        "bytes of request bodies not yet complete that one connection may hold",
        "MAX_PENDING_REQUEST_BYTES",
        integer(65536, 1 << 30),
      ).default(d.maxPendingRequestBytes),
    )
    .addOption(
      option(
        "--request-body-timeout-ms <n>",
        "time a unary or server-streaming call has to send its whole request",
        "REQUEST_BODY_TIMEOUT_MS",
        integer(100, 3_600_000),
      ).default(d.requestBodyTimeoutMs),
    )
    .addOption(
      option(
        "--web-headers-timeout-ms <n>",
        "web port: time a client has to send a request's headers",
        "WEB_HEADERS_TIMEOUT_MS",
        integer(1000, 3_600_000),
      ).default(d.webHeadersTimeoutMs),
    )
    .addOption(
      option("--web-request-timeout-ms <n>", "web port: time a client has to send a whole request", "WEB_REQUEST_TIMEOUT_MS", integer(1000, 3_600_000)).default(
        d.webRequestTimeoutMs,
      ),
    )
    .addOption(option("--ping-interval-ms <n>", "HTTP/2 PING interval per connection", "PING_INTERVAL_MS", integer(100, 3_600_000)).default(d.pingIntervalMs))
    .addOption(
      option("--ping-timeout-ms <n>", "time a PING may go unanswered before the connection is dropped", "PING_TIMEOUT_MS", integer(100, 3_600_000)).default(
        d.pingTimeoutMs,
      ),
    )
    .addOption(
      option("--shutdown-grace-ms <n>", "time open connections get to close on shutdown", "SHUTDOWN_GRACE_MS", integer(0, 600_000)).default(d.shutdownGraceMs),
    )
    .addOption(
      option("--max-concurrent-streams <n>", "HTTP/2 streams one connection may open at once", "MAX_CONCURRENT_STREAMS", integer(1, 2 ** 31 - 1)).default(
        d.maxConcurrentStreams,
      ),
    )
    .addOption(
      option("--max-session-memory-mb <n>", "memory one HTTP/2 connection may buffer, in MiB", "MAX_SESSION_MEMORY_MB", integer(1, 1024)).default(
        d.maxSessionMemoryMb,
      ),
    )
    .addOption(option("--read-max-bytes <n>", "largest request message accepted", "READ_MAX_BYTES", integer(1024, 16 * 1024 * 1024)).default(d.readMaxBytes))
    .addOption(option("--log-level <level>", "log level", "LOG_LEVEL").choices(logLevels).default(d.logLevel))
    .addOption(
      option("--log-burst <n>", "log lines of one kind per second before the rest are summarised in one line", "LOG_BURST", integer(1, 1_000_000)).default(
        d.logBurst,
      ),
    )
    .addOption(
      option("--web-port <n>", "port of the chat page and of Connect and gRPC-Web over HTTP/1.1, for browsers", "WEB_PORT", integer(0, 65535)).default(
        d.webPort,
      ),
    )
    .addOption(new Option("--no-web", "serve no chat page and no HTTP/1.1 port"))
    .addOption(new Option("--no-lean-path", "serve every call through Connect's handler, without the lean gRPC path"))
    .addOption(
      option(
        "--resume-grace-ms <n>",
        "hold a session whose stream dropped this long, for its client to resume it; 0 ends it at once",
        "RESUME_GRACE_MS",
        integer(0, 3_600_000),
      ).default(d.resumeGraceMs),
    )
    .addOption(
      option(
        "--resume-history <n>",
        "events a resumable session keeps after delivering them, to replay on a resume",
        "RESUME_HISTORY",
        integer(1, 100_000),
      ).default(d.resumeHistory),
    )
    .addOption(option("--resume-history-bytes <n>", "bytes of those events", "RESUME_HISTORY_BYTES", integer(4096, 1 << 30)).default(d.resumeHistoryBytes))
    .addOption(new Option("--no-presence", "send no presence events (ChannelsChanged), even to clients that ask"))
    .addOption(
      option("--presence-interval-ms <n>", "how often presence changes are sent, coalesced", "PRESENCE_INTERVAL_MS", integer(10, 60_000)).default(
        d.presenceIntervalMs,
      ),
    )
    .addOption(
      option("--tls-cert <file>", "PEM certificate chain: serve TLS on --port, HTTP/2 and HTTP/1.1 (the chat page too); reloaded on SIGHUP", "TLS_CERT"),
    )
    .addOption(option("--tls-key <file>", "PEM private key of --tls-cert", "TLS_KEY"))
    .addOption(
      option("--jwt-secret <secret>", "signed identities: every call carries a token signed with this HMAC secret (prefer the variable)", "JWT_SECRET"),
    )
    .addOption(option("--jwt-public-key <file>", "signed identities: tokens verify with this PEM public key (RSA, EC or Ed25519)", "JWT_PUBLIC_KEY"))
    .addOption(option("--jwks-url <url>", "signed identities: tokens verify with the keys at this JWKS URL", "JWKS_URL", jwksUrl))
    .addOption(option("--jwt-issuer <iss>", "signed identities: the issuer tokens must name", "JWT_ISSUER"))
    .addOption(option("--jwt-audience <aud>", "signed identities: an audience tokens must name", "JWT_AUDIENCE"))
    .addOption(option("--send-rate <n>", "messages one user may send per second (0: no limit)", "SEND_RATE", integer(0, 1_000_000)).default(d.sendRate))
    .addOption(option("--send-burst <n>", "messages one user may send at once above --send-rate", "SEND_BURST", integer(0, 1_000_000)).default(d.sendBurst))
    .addOption(
      option(
        "--max-connections-per-ip <n>",
        "connections one IP address may hold on each port (0: no limit)",
        "MAX_CONNECTIONS_PER_IP",
        integer(0, 1_000_000),
      ).default(d.maxConnectionsPerIp),
    )
    .addOption(
      option(
        "--connect-rate-per-ip <n>",
        "Connect attempts one IP address may make per second (0: no limit)",
        "CONNECT_RATE_PER_IP",
        integer(0, 1_000_000),
      ).default(d.connectRatePerIp),
    )
    .addOption(
      option(
        "--token-failures-per-ip <n>",
        "signed identities: refused tokens one IP address may present per minute (0: no limit)",
        "TOKEN_FAILURES_PER_IP",
        integer(0, 1_000_000),
      ).default(d.tokenFailuresPerIp),
    )
    .addOption(
      option(
        "--web-origin <origins>",
        "comma-separated origins whose pages may call the server (CORS), besides the page's own",
        "WEB_ORIGIN",
        list(origin),
      ).default(d.webOrigin),
    )
    .addOption(
      option(
        "--web-host <names>",
        "comma-separated host names the web port answers to, besides IP addresses and localhost",
        "WEB_HOST",
        list(hostName),
      ).default(d.webHost),
    )
    .addOption(option("--jwt-username-claim <claim>", "signed identities: the claim that names the user", "JWT_USERNAME_CLAIM").default(d.jwtUsernameClaim))
    .addOption(option("--metrics-port <n>", "serve Prometheus metrics at /metrics on this port (off when unset)", "METRICS_PORT", integer(0, 65535)))
    .addOption(option("--redis <url>", "cluster mode: share state with other nodes through this Redis (redis://host:port)", "REDIS_URL", redisUrl))
    .addOption(
      option("--lease-ms <n>", "cluster mode: a node's lease; a dead node's users are gone within lease + sweep", "LEASE_MS", integer(300, 600_000)).default(
        d.leaseMs,
      ),
    )
    .addOption(option("--sweep-ms <n>", "cluster mode: how often to look for dead nodes", "SWEEP_MS", integer(100, 600_000)).default(d.sweepMs))
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .allowExcessArguments(false);
}

/**
 * Reads the configuration from command-line flags, then environment
 * variables, then defaults, in that order of precedence. Throws a ConfigError
 * naming the flag or variable for a bad or unknown value, and for --help
 * (whose text is the error's message), so that main decides how to exit.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServerConfig {
  const envTable: EnvTable = new Map();
  const program = createProgram(optionsWithEnv(envTable));
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const help = (error as { code?: string }).code === "commander.helpDisplayed";
    throw new ConfigError(help ? program.helpInformation() : message.replace(/^error: /, ""));
  }
  for (const [key, { name, parse }] of envTable) {
    const value = env[name];
    const source = program.getOptionValueSource(key);
    if (value === undefined || (source !== "default" && source !== undefined)) {
      continue;
    }
    try {
      program.setOptionValueWithSource(key, parse(value), "env");
    } catch (error) {
      throw new ConfigError(`environment variable ${name}: ${(error as Error).message}`);
    }
  }
  const o = program.opts<ServerConfig & { web?: boolean }>();
  checkConsistency(o);
  const config = { ...o };
  if (config.metricsPort === undefined) delete config.metricsPort;
  if (config.tlsCert === undefined) delete config.tlsCert;
  if (config.tlsKey === undefined) delete config.tlsKey;
  for (const key of ["jwtSecret", "jwtPublicKey", "jwksUrl", "jwtIssuer", "jwtAudience"] as const) {
    if (config[key] === undefined) delete config[key];
  }
  if (config.redis === undefined) delete config.redis;
  const { web, ...rest } = config;
  if (web === false) delete rest.webPort;
  return rest;
}

/** Throws a ConfigError for values that are valid alone but not together. */
function checkConsistency(o: ServerConfig & { web?: boolean }): void {
  const keySources = [
    ["--jwt-secret (JWT_SECRET)", o.jwtSecret],
    ["--jwt-public-key (JWT_PUBLIC_KEY)", o.jwtPublicKey],
    ["--jwks-url (JWKS_URL)", o.jwksUrl],
  ].filter(([, value]) => value !== undefined);
  if (keySources.length > 1) {
    throw new ConfigError(`${keySources.map(([flag]) => flag).join(" and ")}: give one source of token keys, not ${keySources.length}`);
  }
  if (keySources.length === 0 && (o.jwtIssuer !== undefined || o.jwtAudience !== undefined)) {
    throw new ConfigError(`--jwt-issuer and --jwt-audience need a source of token keys: --jwt-secret, --jwt-public-key or --jwks-url`);
  }
  if (o.jwtSecret !== undefined && Buffer.byteLength(o.jwtSecret) < 32) {
    throw new ConfigError("--jwt-secret (JWT_SECRET): use at least 32 bytes, or HS256 tokens can be forged by guessing it");
  }
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new ConfigError(
      o.tlsCert === undefined ? "--tls-key (TLS_KEY) needs --tls-cert (TLS_CERT) too" : "--tls-cert (TLS_CERT) needs --tls-key (TLS_KEY) too",
    );
  }
  if (!(logLevels as readonly string[]).includes(o.logLevel)) {
    throw new ConfigError(`environment variable LOG_LEVEL: expected one of ${logLevels.join(", ")}, got ${JSON.stringify(o.logLevel)}`);
  }
  const ports = (
    [
      ["--port", o.port],
      ["--web-port", o.web === false ? 0 : o.webPort],
      ["--metrics-port", o.metricsPort],
    ] as const
  ).filter(([, port]) => port !== undefined && port !== 0);
  for (const [i, [flag, port]] of ports.entries()) {
    const other = ports.slice(i + 1).find(([, p]) => p === port);
    if (other !== undefined) throw new ConfigError(`${flag} and ${other[0]} are both ${port}: each needs a port of its own`);
  }
  if (o.webHeadersTimeoutMs > o.webRequestTimeoutMs) {
    throw new ConfigError(`--web-headers-timeout-ms (${o.webHeadersTimeoutMs}) must not exceed --web-request-timeout-ms (${o.webRequestTimeoutMs})`);
  }
  if (o.pingTimeoutMs > o.pingIntervalMs) {
    throw new ConfigError(`--ping-timeout-ms (${o.pingTimeoutMs}) must not exceed --ping-interval-ms (${o.pingIntervalMs})`);
  }
}
