import { defaultMaxConnections, defaultMaxConnectionsText } from "./default-max-connections.js";
import { logLevels } from "./logger.js";
import { duration, hostName, hostPort, integer, jwksUrl, list, oneOf, onOff, origin, redisUrl, text } from "./value-parsers.js";

/**
 * The topics the settings are grouped under, in --help and in the
 * documentation, in this order, with their headings.
 */
export const settingGroups = {
  server: "Server",
  limits: "Limits",
  security: "Security",
  cluster: "Cluster",
  realTime: "Real-time",
  history: "History",
  operations: "Operations",
} as const;

/** One of the topics of {@link settingGroups}. */
export type SettingGroup = keyof typeof settingGroups;

/** A setting given a value, by its flag or its environment variable. */
export interface ValueSetting<T> {
  /** The flag and the name of its value, as in "--port <n>". */
  flag: `--${string} <${string}>`;
  /** The environment variable that sets it when the flag is not given. */
  env: string;
  /** Reads the text of the flag or variable; throws an InvalidArgumentError that says what was expected. */
  parse: (value: string) => T;
  /** The only values allowed, listed in --help. */
  choices?: readonly T[];
  /** The value when neither flag nor variable is given; without one, the setting is unset. */
  default?: T;
  /**
   * The default in words, shown instead of the value in --help and the
   * documentation: one worked out on each machine, one clearer said than
   * shown, or what an unset setting means when that is not plain "off". In
   * Markdown: --help shows it without its backticks.
   */
  defaultText?: string;
  /** A flag that unsets the setting, default included, such as --no-web for --web-port. */
  unsetBy?: { flag: `--no-${string}`; help: string; doc?: string };
  /** What it does, in a line of --help. */
  help: string;
  /**
   * What it does in the documentation, in Markdown, where that says more
   * than help: units, the status a client is given, links to other pages.
   * Without one, the documentation says help.
   */
  doc?: string;
  group: SettingGroup;
}

/**
 * A feature that is off unless its flag, which takes no value, or its
 * variable (true or 1) turns it on. It has no choices, no default in words
 * (off says it) and nothing that unsets it.
 */
export interface OptInSetting extends Omit<ValueSetting<boolean>, "flag" | "default" | "choices" | "defaultText" | "unsetBy"> {
  /** The flag alone, as in "--reuse-port". */
  flag: `--${string}`;
  default: false;
  choices?: never;
  defaultText?: never;
  unsetBy?: never;
}

/** A feature that is on unless its --no- flag turns it off; it has no variable. */
export interface SwitchSetting {
  flag: `--no-${string}`;
  help: string;
  /** As in {@link ValueSetting.doc}. */
  doc?: string;
  group: SettingGroup;
}

/**
 * Any entry of {@link serverSettings}. The value types are listed one by one
 * so that each entry's default is checked against what its parser returns;
 * a setting of a new type adds its type here.
 */
export type Setting = ValueSetting<number> | ValueSetting<string> | ValueSetting<string[]> | OptInSetting | SwitchSetting;

/** How a setting that 0 turns off says its default of 0. */
const zeroIsOff = "`0` (off)";

/**
 * Every setting of the server, the one place a setting is declared: its key
 * in ServerConfig (commander's name for its flag, which createConfigProgram
 * checks), its flag, variable, parser, default, help and group. The type of
 * the configuration, the defaults, the command-line program, --help, the
 * labels in error messages and the documentation's table all come from it.
 */
export const serverSettings = {
  host: { flag: "--host <address>", env: "HOST", parse: text, default: "127.0.0.1", help: "address to listen on", group: "server" },
  port: { flag: "--port <n>", env: "PORT", parse: integer(0, 65535), default: 50051, help: "TCP port; 0 picks a free one", group: "server" },
  /** The port of the chat page and the browser protocols (HTTP/1.1); none when unset (--no-web). */
  webPort: {
    flag: "--web-port <n>",
    env: "WEB_PORT",
    parse: integer(0, 65535),
    default: 8080,
    unsetBy: { flag: "--no-web", help: "serve no chat page and no HTTP/1.1 port" },
    help: "port of the chat page and of Connect and gRPC-Web over HTTP/1.1, for browsers",
    group: "server",
  },
  /**
   * Whether the gRPC and web ports are bound with SO_REUSEPORT, so that
   * several processes (nodes of one cluster) listen on each and the kernel
   * spreads connections over them. Never the metrics port: a scrape or a
   * probe must reach the one process it names.
   */
  reusePort: {
    flag: "--reuse-port",
    env: "REUSE_PORT",
    parse: onOff,
    default: false,
    help: "share --port and --web-port with other processes started with it (nodes of one cluster); never the metrics port",
    doc: "share `--port` and `--web-port` with other processes started with it, nodes of one cluster (Linux `SO_REUSEPORT`): the kernel hands each new connection to one of them. Never the metrics port, which a scrape must reach on one known process: each node needs its own ([cluster.md](cluster.md#several-nodes-on-one-machine)). The variable takes `true` or `1`",
    group: "server",
  },
  /** Whether plain gRPC calls take the lean path (see grpc-lean-path.ts), or all go through Connect. */
  leanPath: {
    flag: "--no-lean-path",
    help: "serve every call through Connect's handler, without the lean gRPC path",
    doc: "serve every call through Connect's own handler, without [the lean gRPC path](architecture.md#the-lean-grpc-path); for comparison and as an escape hatch",
    group: "server",
  },

  queueLimit: {
    flag: "--queue-limit <n>",
    env: "QUEUE_LIMIT",
    parse: integer(1, 1_000_000),
    default: 4096,
    help: "events that may wait for one stream before it is cut off",
    group: "limits",
  },
  /** Bytes of queued events (what queuedEventBytes counts: twice the text plus 700 each) that may wait for one stream. */
  queueLimitBytes: {
    flag: "--queue-limit-bytes <n>",
    env: "QUEUE_LIMIT_BYTES",
    parse: integer(4096, 1 << 30),
    default: 4 * 1024 * 1024,
    help: "bytes of events that may wait for one stream before it is cut off",
    doc: "bytes (twice the text plus 700 per event, until written) that may wait for one stream before it is cut off",
    group: "limits",
  },
  /** Bytes that may wait in all the streams' queues together; past it, the largest are cut off. */
  maxQueuedBytes: {
    flag: "--max-queued-bytes <n>",
    env: "MAX_QUEUED_BYTES",
    parse: integer(65536, 64 * 2 ** 30),
    default: 256 * 1024 * 1024,
    help: "bytes that may wait in all streams' queues together; past it the largest are cut off",
    doc: "bytes that may wait in all streams' queues together; past it, the largest are cut off (`RESOURCE_EXHAUSTED`)",
    group: "limits",
  },
  stallTimeoutMs: {
    flag: "--stall-timeout-ms <n>",
    env: "STALL_TIMEOUT_MS",
    parse: integer(100, 3_600_000),
    default: 30_000,
    help: "time a response may wait for the client's flow-control window before the stream is cut off",
    doc: "a response that waits this long for its client's flow-control window ends its stream (`RESOURCE_EXHAUSTED`)",
    group: "limits",
  },
  maxGroupsPerUser: {
    flag: "--max-groups-per-user <n>",
    env: "MAX_GROUPS_PER_USER",
    parse: integer(1, 1_000_000),
    default: 1000,
    help: "groups one user may be a member of",
    group: "limits",
  },
  maxGroups: {
    flag: "--max-groups <n>",
    env: "MAX_GROUPS",
    parse: integer(1, 100_000_000),
    default: 100_000,
    help: "groups that may exist at once",
    doc: "groups that may exist at once (`RESOURCE_EXHAUSTED` past it)",
    group: "limits",
  },
  listPageSize: {
    flag: "--list-page-size <n>",
    env: "LIST_PAGE_SIZE",
    parse: integer(1, 100_000),
    default: 1000,
    help: "the default and the largest page of ListChannels",
    group: "limits",
  },
  /** Connections the gRPC port accepts at once; more are refused. */
  maxConnections: {
    flag: "--max-connections <n>",
    env: "MAX_CONNECTIONS",
    parse: integer(1, 10_000_000),
    default: defaultMaxConnections(),
    defaultText: defaultMaxConnectionsText,
    help: "connections the gRPC port accepts at once",
    doc: "connections the gRPC port accepts at once; more are closed at once, logged once a minute",
    group: "limits",
  },
  idleTimeoutMs: {
    flag: "--idle-timeout-ms <n>",
    env: "IDLE_TIMEOUT_MS",
    parse: integer(1000, 86_400_000),
    default: 300_000,
    help: "close a connection that has had no open stream this long",
    doc: "a connection with no open stream this long gets a GOAWAY and is closed",
    group: "limits",
  },
  settingsTimeoutMs: {
    flag: "--settings-timeout-ms <n>",
    env: "SETTINGS_TIMEOUT_MS",
    parse: integer(100, 600_000),
    default: 5_000,
    help: "close a connection that has not acknowledged the server's SETTINGS (with TLS: finished its handshake) by then",
    doc: "a connection that has not acknowledged the server's SETTINGS by then is dropped; with TLS, so is one that has not finished its handshake by then",
    group: "limits",
  },
  unackedHeaderBytes: {
    flag: "--unacked-header-bytes <n>",
    env: "UNACKED_HEADER_BYTES",
    parse: integer(16 * 1024, 1 << 30),
    default: 64 * 1024,
    help: "request header bytes a connection may hold in open streams before it acknowledges SETTINGS",
    doc: "request header bytes a connection's open streams may hold before it acknowledges SETTINGS; past it, the connection is dropped",
    group: "limits",
  },
  /** Bytes of unary and server-streaming request bodies not yet complete that one connection may hold. */
  maxPendingRequestBytes: {
    flag: "--max-pending-request-bytes <n>",
    env: "MAX_PENDING_REQUEST_BYTES",
    parse: integer(65536, 1 << 30),
    default: 4 * 1024 * 1024,
    help: "bytes of request bodies not yet complete that one connection may hold",
    doc: "bytes of unary and server-streaming request bodies not yet complete that one connection may hold; the stream that passes it is reset (`ENHANCE_YOUR_CALM`, which gRPC clients read as `RESOURCE_EXHAUSTED`)",
    group: "limits",
  },
  requestBodyTimeoutMs: {
    flag: "--request-body-timeout-ms <n>",
    env: "REQUEST_BODY_TIMEOUT_MS",
    parse: integer(100, 3_600_000),
    default: 10_000,
    help: "time a unary or server-streaming call has to send its whole request",
    doc: "a unary or server-streaming call whose request is not complete by then is reset (`CANCEL`)",
    group: "limits",
  },
  webHeadersTimeoutMs: {
    flag: "--web-headers-timeout-ms <n>",
    env: "WEB_HEADERS_TIMEOUT_MS",
    parse: integer(1000, 3_600_000),
    default: 10_000,
    help: "web port: time a client has to send a request's headers",
    group: "limits",
  },
  webRequestTimeoutMs: {
    flag: "--web-request-timeout-ms <n>",
    env: "WEB_REQUEST_TIMEOUT_MS",
    parse: integer(1000, 3_600_000),
    default: 30_000,
    help: "web port: time a client has to send a whole request",
    doc: "web port: time a client has to send a whole request (not the response, which may stream for hours)",
    group: "limits",
  },
  pingIntervalMs: {
    flag: "--ping-interval-ms <n>",
    env: "PING_INTERVAL_MS",
    parse: integer(100, 3_600_000),
    default: 30_000,
    help: "HTTP/2 PING interval per connection",
    group: "limits",
  },
  pingTimeoutMs: {
    flag: "--ping-timeout-ms <n>",
    env: "PING_TIMEOUT_MS",
    parse: integer(100, 3_600_000),
    default: 10_000,
    help: "time a PING may go unanswered before the connection is dropped",
    group: "limits",
  },
  maxConcurrentStreams: {
    flag: "--max-concurrent-streams <n>",
    env: "MAX_CONCURRENT_STREAMS",
    parse: integer(1, 2 ** 31 - 1),
    default: 10_000,
    help: "HTTP/2 streams one connection may open at once",
    doc: "HTTP/2 streams one connection may have open (a gateway carries many users' streams on one connection); past it, the client queues new streams",
    group: "limits",
  },
  /**
   * Streams one connection may reset before the server answered them, at
   * once: the signature of the rapid-reset attack (see
   * limit-unanswered-resets.ts); 0 turns the count off.
   */
  unansweredResetBurst: {
    flag: "--unanswered-reset-burst <n>",
    env: "UNANSWERED_RESET_BURST",
    parse: integer(0, 1_000_000_000),
    default: 200,
    help: "streams one connection may reset before the server answers them, at once, before it is closed (0: no limit)",
    group: "limits",
  },
  unansweredResetRate: {
    flag: "--unanswered-reset-rate <n>",
    env: "UNANSWERED_RESET_RATE",
    parse: integer(0, 1_000_000_000),
    default: 50,
    help: "streams one connection may reset before the server answers them, per second, beyond the burst",
    group: "limits",
  },
  /**
   * nghttp2's own limit on RST_STREAM frames received, answered or not
   * (node's streamResetBurst and streamResetRate): a backstop far above what a
   * gateway's departing users send, since it cannot tell a served stream's
   * cancellation from an attack.
   */
  streamResetBurst: {
    flag: "--stream-reset-burst <n>",
    env: "STREAM_RESET_BURST",
    parse: integer(1, 2 ** 31 - 1),
    default: 20_000,
    help: "RST_STREAM frames one connection may send at once, answered streams included, before nghttp2 closes it",
    group: "limits",
  },
  streamResetRate: {
    flag: "--stream-reset-rate <n>",
    env: "STREAM_RESET_RATE",
    parse: integer(1, 2 ** 31 - 1),
    default: 2000,
    help: "RST_STREAM frames one connection may send per second beyond the burst, answered streams included",
    group: "limits",
  },
  maxSessionMemoryMb: {
    flag: "--max-session-memory-mb <n>",
    env: "MAX_SESSION_MEMORY_MB",
    parse: integer(1, 1024),
    default: 10,
    help: "memory one HTTP/2 connection may buffer, in MiB",
    doc: "memory one HTTP/2 connection may buffer, in MiB (node's `maxSessionMemory`)",
    group: "limits",
  },
  readMaxBytes: {
    flag: "--read-max-bytes <n>",
    env: "READ_MAX_BYTES",
    parse: integer(1024, 16 * 1024 * 1024),
    default: 64 * 1024,
    help: "largest request message accepted",
    doc: "largest request message accepted, after decompression",
    group: "limits",
  },

  /** A PEM certificate chain file: with tlsKey, the gRPC port serves TLS, HTTP/2 and HTTP/1.1 by ALPN. */
  tlsCert: {
    flag: "--tls-cert <file>",
    env: "TLS_CERT",
    parse: text,
    help: "PEM certificate chain: serve TLS on --port, HTTP/2 and HTTP/1.1 (the chat page too); reloaded on SIGHUP",
    doc: "PEM certificate chain file: with `--tls-key`, `--port` serves TLS, HTTP/2 and HTTP/1.1 by ALPN (the chat page too); SIGHUP reloads both ([security.md](security.md))",
    group: "security",
  },
  tlsKey: {
    flag: "--tls-key <file>",
    env: "TLS_KEY",
    parse: text,
    help: "PEM private key of --tls-cert",
    doc: "PEM private key file of `--tls-cert`, reloaded with it on SIGHUP",
    group: "security",
  },
  /** Signed identities: the HMAC secret of tokens (HS256/384/512). */
  jwtSecret: {
    flag: "--jwt-secret <secret>",
    env: "JWT_SECRET",
    parse: text,
    help: "signed identities: every call carries a token signed with this HMAC secret (prefer the variable)",
    doc: "signed identities: every call carries a token signed with this HMAC secret (HS256/384/512; at least 32 bytes; prefer the variable, which `ps` does not show)",
    group: "security",
  },
  jwtPublicKey: {
    flag: "--jwt-public-key <file>",
    env: "JWT_PUBLIC_KEY",
    parse: text,
    help: "signed identities: tokens verify with this PEM public key (RSA, EC or Ed25519)",
    doc: "signed identities: tokens verify with this PEM public key file (RSA, EC P-256/384/521, Ed25519)",
    group: "security",
  },
  jwksUrl: {
    flag: "--jwks-url <url>",
    env: "JWKS_URL",
    parse: jwksUrl,
    help: "signed identities: tokens verify with the keys at this JWKS URL",
    doc: "signed identities: tokens verify with the keys at this JWKS URL (fetched when needed, again for an unknown `kid` at most every 30 s)",
    group: "security",
  },
  jwtIssuer: {
    flag: "--jwt-issuer <iss>",
    env: "JWT_ISSUER",
    parse: text,
    defaultText: "any",
    help: "signed identities: the issuer tokens must name",
    doc: "signed identities: the `iss` tokens must carry",
    group: "security",
  },
  jwtAudience: {
    flag: "--jwt-audience <aud>",
    env: "JWT_AUDIENCE",
    parse: text,
    defaultText: "any",
    help: "signed identities: an audience tokens must name",
    doc: "signed identities: an `aud` tokens must carry",
    group: "security",
  },
  jwtUsernameClaim: {
    flag: "--jwt-username-claim <claim>",
    env: "JWT_USERNAME_CLAIM",
    parse: text,
    default: "sub",
    help: "signed identities: the claim that names the user",
    group: "security",
  },
  /** Signed identities: refused tokens one IP address may present per minute before its calls are refused unchecked; 0 for no limit. */
  tokenFailuresPerIp: {
    flag: "--token-failures-per-ip <n>",
    env: "TOKEN_FAILURES_PER_IP",
    parse: integer(0, 1_000_000),
    default: 60,
    help: "signed identities: refused tokens one IP address may present per minute (0: no limit)",
    doc: "signed identities: refused tokens one IP address may present per minute (0: no limit); past it, its calls are refused (`RESOURCE_EXHAUSTED`) without a signature check until the minute is over",
    group: "security",
  },
  /** Messages one user may send per second, sustained; 0 for no limit. */
  sendRate: {
    flag: "--send-rate <n>",
    env: "SEND_RATE",
    parse: integer(0, 1_000_000),
    default: 0,
    defaultText: zeroIsOff,
    help: "messages one user may send per second",
    doc: "messages one user may send per second, sustained",
    group: "security",
  },
  sendBurst: {
    flag: "--send-burst <n>",
    env: "SEND_BURST",
    parse: integer(0, 1_000_000),
    default: 100,
    help: "messages one user may send at once above --send-rate",
    doc: "messages one user may send at once above `--send-rate`",
    group: "security",
  },
  maxConnectionsPerIp: {
    flag: "--max-connections-per-ip <n>",
    env: "MAX_CONNECTIONS_PER_IP",
    parse: integer(0, 1_000_000),
    default: 0,
    defaultText: zeroIsOff,
    help: "connections one IP address may hold on each port",
    doc: "connections one IP address may hold on each port; more are closed at once, logged once a minute",
    group: "security",
  },
  connectRatePerIp: {
    flag: "--connect-rate-per-ip <n>",
    env: "CONNECT_RATE_PER_IP",
    parse: integer(0, 1_000_000),
    default: 0,
    defaultText: zeroIsOff,
    help: "Connect attempts one IP address may make per second",
    doc: "`Connect` attempts one IP address may make per second",
    group: "security",
  },
  /** Origins (scheme://host:port) whose pages may call the server from a browser, besides the page's own. */
  webOrigin: {
    flag: "--web-origin <origins>",
    env: "WEB_ORIGIN",
    parse: list(origin),
    default: [],
    defaultText: "none",
    help: "comma-separated origins whose pages may call the server (CORS), besides the page's own",
    doc: "comma-separated origins (`https://app.example`) whose pages may call the server (CORS), besides the page's own",
    group: "security",
  },
  webHost: {
    flag: "--web-host <names>",
    env: "WEB_HOST",
    parse: list(hostName),
    default: [],
    defaultText: "none",
    help: "comma-separated host names the web port answers to, besides IP addresses and localhost",
    doc: "comma-separated host names the web port answers to, besides IP addresses and `localhost`",
    group: "security",
  },

  /** Cluster mode: the URL of the Redis every node shares; in memory when unset. */
  redis: {
    flag: "--redis <url>",
    env: "REDIS_URL",
    parse: redisUrl,
    help: "cluster mode: share state with other nodes through this Redis (redis://host:port)",
    doc: "cluster mode: share state with other nodes through this Redis (`redis://host:port`; see [cluster.md](cluster.md))",
    group: "cluster",
  },
  /** Cluster mode on a Redis Cluster: its seed nodes; instead of redis. */
  redisCluster: {
    flag: "--redis-cluster <nodes>",
    env: "REDIS_CLUSTER",
    parse: list(hostPort),
    help: "cluster mode on a Redis Cluster: comma-separated host:port of some of its masters (instead of --redis)",
    doc: "cluster mode on a Redis Cluster: comma-separated `host:port` of some of its masters, instead of `--redis` (see [cluster.md](cluster.md))",
    group: "cluster",
  },
  leaseMs: {
    flag: "--lease-ms <n>",
    env: "LEASE_MS",
    parse: integer(300, 600_000),
    default: 2_000,
    help: "cluster mode: a node's lease, refreshed four times as often; a dead node's users are gone within lease + sweep",
    group: "cluster",
  },
  sweepMs: {
    flag: "--sweep-ms <n>",
    env: "SWEEP_MS",
    parse: integer(100, 600_000),
    default: 500,
    help: "cluster mode: how often to look for dead nodes",
    group: "cluster",
  },

  resumeGraceMs: {
    flag: "--resume-grace-ms <n>",
    env: "RESUME_GRACE_MS",
    parse: integer(0, 3_600_000),
    default: 0,
    defaultText: zeroIsOff,
    help: "hold a session whose stream dropped this long, for its client to resume it; 0 ends it at once",
    doc: "how long a session whose stream dropped is held for its client to resume it; 0 ends it at once ([realtime.md](realtime.md#resuming-after-a-dropped-connection))",
    group: "realTime",
  },
  resumeHistory: {
    flag: "--resume-history <n>",
    env: "RESUME_HISTORY",
    parse: integer(1, 100_000),
    default: 256,
    help: "events a resumable session keeps after delivering them, to replay on a resume",
    group: "realTime",
  },
  resumeHistoryBytes: {
    flag: "--resume-history-bytes <n>",
    env: "RESUME_HISTORY_BYTES",
    parse: integer(4096, 1 << 30),
    default: 256 * 1024,
    help: "bytes of those events",
    group: "realTime",
  },
  /** Whether presence events (ChannelsChanged) are on. */
  presence: {
    flag: "--no-presence",
    help: "send no presence events (ChannelsChanged), even to clients that ask",
    doc: "send no presence events (`ChannelsChanged`), even to clients that ask",
    group: "realTime",
  },
  presenceIntervalMs: {
    flag: "--presence-interval-ms <n>",
    env: "PRESENCE_INTERVAL_MS",
    parse: integer(10, 60_000),
    default: 250,
    help: "how often presence changes are sent, coalesced",
    doc: "how long presence changes are collected before they are sent together",
    group: "realTime",
  },

  historyMessages: {
    flag: "--history-messages <n>",
    env: "HISTORY_MESSAGES",
    parse: integer(0, 1_000_000),
    default: 1000,
    help: "messages kept per channel (a group, or a pair of users) for ListMessages; 0 keeps none",
    doc: "messages kept per channel (a group, or a pair of users) for `ListMessages`; `0` keeps none, and `ListMessages` answers `FAILED_PRECONDITION` ([history.md](history.md))",
    group: "history",
  },
  historyBytes: {
    flag: "--history-bytes <n>",
    env: "HISTORY_BYTES",
    parse: integer(16_384, 1 << 30),
    default: 1024 * 1024,
    help: "bytes kept per channel, counted as the queues count them; the oldest go first",
    group: "history",
  },
  historyTtl: {
    flag: "--history-ttl <duration>",
    env: "HISTORY_TTL",
    parse: duration(1000, 365 * 86_400_000),
    default: 86_400_000,
    defaultText: "`24h`",
    help: "how long a message is kept in history (90s, 10m, 24h, 7d)",
    group: "history",
  },
  historyTotalBytes: {
    flag: "--history-total-bytes <n>",
    env: "HISTORY_TOTAL_BYTES",
    parse: integer(16_384, 2 ** 40),
    default: 64 * 1024 * 1024,
    help: "bytes of history kept across all channels, also counted in --max-queued-bytes; the oldest go first",
    doc: "bytes of history kept across all channels of a process, also counted in `--max-queued-bytes`, where history gives up its oldest before any stream is cut off; in cluster mode history lives in Redis ([history.md](history.md#bounds))",
    group: "history",
  },
  dedupWindow: {
    flag: "--dedup-window <duration>",
    env: "DEDUP_WINDOW",
    parse: duration(0, 7 * 86_400_000),
    default: 600_000,
    defaultText: "`10m`",
    help: "how long a SendMessage request_id is remembered, so that a retry delivers nothing again; 0s turns it off",
    group: "history",
  },
  dedupPerUser: {
    flag: "--dedup-per-user <n>",
    env: "DEDUP_PER_USER",
    parse: integer(1, 1_000_000),
    default: 1000,
    help: "request ids remembered per sender; its oldest is forgotten first",
    group: "history",
  },
  dedupTotal: {
    flag: "--dedup-total <n>",
    env: "DEDUP_TOTAL",
    parse: integer(1, 100_000_000),
    default: 100_000,
    help: "request ids remembered in all (about 640 bytes of heap each); the oldest is forgotten first",
    group: "history",
  },
  logLevel: { flag: "--log-level <level>", env: "LOG_LEVEL", ...oneOf(logLevels), default: "info", help: "log level", group: "operations" },
  logBurst: {
    flag: "--log-burst <n>",
    env: "LOG_BURST",
    parse: integer(1, 1_000_000),
    default: 100,
    help: "log lines of one kind per second before the rest are summarised in one line",
    doc: 'log lines of one kind (message and level) per second; the rest are counted in one "log lines suppressed" line',
    group: "operations",
  },
  /** The port of the Prometheus /metrics endpoint; none when unset. */
  metricsPort: {
    flag: "--metrics-port <n>",
    env: "METRICS_PORT",
    parse: integer(0, 65535),
    help: "serve Prometheus metrics at /metrics, and the probes /healthz and /readyz, on this port",
    doc: "serve Prometheus metrics at `http://HOST:PORT/metrics`, and the probes `/healthz` and `/readyz` ([operations.md](operations.md#liveness-and-readiness-probes))",
    group: "operations",
  },
  shutdownGraceMs: {
    flag: "--shutdown-grace-ms <n>",
    env: "SHUTDOWN_GRACE_MS",
    parse: integer(0, 600_000),
    default: 5_000,
    help: "time open connections get to close on shutdown",
    group: "operations",
  },
} satisfies Record<string, Setting>;

type Settings = typeof serverSettings;

/** The key of a setting, which is also its key in ServerConfig. */
export type SettingKey = keyof Settings;

/** What a setting's value is: what its parser returns, or on/off for a switch. */
type ValueOf<S> = S extends { parse: (value: string) => infer T } ? T : boolean;

/** The keys of settings that may be unset: those without a default, and those a --no- flag unsets. */
type UnsetKeys = {
  [K in SettingKey]: Settings[K] extends { parse: unknown } ? (Settings[K] extends { default: unknown; unsetBy?: never } ? never : K) : never;
}[SettingKey];

/**
 * Everything the server can be told at start, with its unit in the name;
 * one key for each entry of {@link serverSettings}, whose help says what it
 * means. A setting that may be unset is optional.
 */
export type ServerConfig = {
  // Mapped over keyof the table itself, "as" picking the keys, so that each key keeps the comment of its entry.
  [K in keyof Settings as K extends UnsetKeys ? never : K]: ValueOf<Settings[K]>;
} & {
  [K in keyof Settings as K extends UnsetKeys ? K : never]?: ValueOf<Settings[K]>;
};

/** The settings as [key, setting] pairs, in the order of the table. */
export const settingEntries = Object.entries(serverSettings) as [SettingKey, Setting][]; // Object.entries types its keys as string.

/** Whether a setting is a switch, which takes no value. */
export function isSwitch(setting: Setting): setting is SwitchSetting {
  return !("parse" in setting);
}

/** The configuration used when no flag or variable says otherwise: each setting's default, switches on. */
export const defaultConfig: ServerConfig = Object.fromEntries(
  settingEntries.flatMap(([key, setting]): [SettingKey, unknown][] => {
    if (isSwitch(setting)) return [[key, true]];
    return setting.default === undefined ? [] : [[key, setting.default]];
  }),
) as ServerConfig; // Built entry by entry from the table, whose types ServerConfig is made from.

/**
 * A setting's default as --help and the documentation say it, in Markdown:
 * its words, or else its value as code; "off" when it has neither, for a
 * setting without a default is unset and what it would turn on is off, and
 * for a feature that its flag turns on.
 */
export function settingDefault(setting: ValueSetting<unknown> | OptInSetting): string {
  if (setting.defaultText !== undefined) return setting.defaultText;
  return setting.default === undefined || setting.default === false ? "off" : `\`${String(setting.default)}\``;
}

/** A setting's flag without its value, as in "--port". */
export function settingFlag(key: SettingKey): string {
  return serverSettings[key].flag.replace(/ <.*>$/, "");
}

/**
 * How error messages name a setting: its flag and its variable, as in
 * "--tls-cert (TLS_CERT)", since either may be how the value came; a switch
 * by its flag alone.
 */
export function settingLabel(key: SettingKey): string {
  const setting: Setting = serverSettings[key];
  return isSwitch(setting) ? setting.flag : `${settingFlag(key)} (${setting.env})`;
}
