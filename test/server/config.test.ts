import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../server/ops/config-error.js";
import { defaultMaxConnections } from "../../server/ops/default-max-connections.js";
import { parseConfig } from "../../server/ops/parse-config.js";
import { defaultConfig, settingDefault, settingEntries, settingGroups } from "../../server/ops/server-settings.js";
import { parseAuthorization } from "../../server/rpc/auth-interceptor.js";

describe("configuration", () => {
  it("uses the defaults when nothing is given", () => {
    assert.deepEqual(parseConfig([], {}), defaultConfig);
    assert.equal(defaultConfig.port, 50051);
    assert.equal(defaultConfig.host, "127.0.0.1");
  });

  it("reads flags over environment over defaults", () => {
    const config = parseConfig(["--port", "7000", "--log-level", "debug"], {
      PORT: "6000",
      HOST: "0.0.0.0",
      QUEUE_LIMIT: "128",
      PING_INTERVAL_MS: "5000",
      PING_TIMEOUT_MS: "1000",
    });
    assert.equal(config.port, 7000);
    assert.equal(config.host, "0.0.0.0");
    assert.equal(config.queueLimit, 128);
    assert.equal(config.pingIntervalMs, 5000);
    assert.equal(config.pingTimeoutMs, 1000);
    assert.equal(config.logLevel, "debug");
  });

  it("names the flag or variable that is wrong", () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--port", "70000"], {}, /--port <n>.*from 0 to 65535, got "70000"/],
      [[], { PORT: "12x" }, /environment variable PORT: .*got "12x"/],
      [[], { QUEUE_LIMIT: "0" }, /QUEUE_LIMIT/],
      [[], { LOG_LEVEL: "loud" }, /LOG_LEVEL: expected one of trace, debug/],
      [["--log-level", "loud"], {}, /loud.*Allowed choices/],
      [["--nope"], {}, /unknown option '--nope'/],
      [["extra"], {}, /too many arguments|excess/i],
      [["--ping-interval-ms", "1000", "--ping-timeout-ms", "2000"], {}, /must not exceed/],
      [["--redis", "http://127.0.0.1:6379"], {}, /expected a redis:\/\/ or rediss:\/\/ URL/],
      [[], { REDIS_URL: "not a url" }, /environment variable REDIS_URL: expected a redis:\/\/ URL/],
    ];
    for (const [argv, env, pattern] of cases) {
      assert.throws(
        () => parseConfig(argv, env),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, pattern);
          return true;
        },
      );
    }
  });

  it("turns cluster mode on with --redis or REDIS_URL", () => {
    assert.equal(parseConfig([], {}).redis, undefined);
    assert.equal(parseConfig([], { REDIS_URL: "redis://127.0.0.1:6379" }).redis, "redis://127.0.0.1:6379");
    const config = parseConfig(["--redis", "redis://10.0.0.1:7000/2", "--lease-ms", "5000"], {});
    assert.equal(config.redis, "redis://10.0.0.1:7000/2");
    assert.equal(config.leaseMs, 5000);
    // A dead node's users go within lease + sweep: 2.5 s by default.
    assert.equal(config.sweepMs, 500);
    assert.equal(parseConfig([], {}).leaseMs, 2000);
  });

  it("runs cluster mode on a Redis Cluster with --redis-cluster or REDIS_CLUSTER, and not with --redis too", () => {
    assert.deepEqual(parseConfig(["--redis-cluster", "10.0.0.1:7000, 10.0.0.2:7000"], {}).redisCluster, ["10.0.0.1:7000", "10.0.0.2:7000"]);
    assert.deepEqual(parseConfig([], { REDIS_CLUSTER: "[::1]:7001" }).redisCluster, ["[::1]:7001"]);
    assert.throws(() => parseConfig(["--redis-cluster", "10.0.0.1"], {}), /expected host:port/);
    assert.throws(() => parseConfig(["--redis", "redis://a:1", "--redis-cluster", "b:2"], {}), /give one Redis or one Redis Cluster, not both/);
  });

  it("shares the ports with --reuse-port, or REUSE_PORT true or 1, and not by default", () => {
    assert.equal(defaultConfig.reusePort, false);
    assert.equal(parseConfig([], {}).reusePort, false);
    assert.equal(parseConfig(["--reuse-port"], {}).reusePort, true);
    for (const [value, on] of [
      ["true", true],
      ["1", true],
      ["false", false],
      ["0", false],
    ] as const) {
      assert.equal(parseConfig([], { REUSE_PORT: value }).reusePort, on, value);
    }
    // The flag is given, so it wins over the variable.
    assert.equal(parseConfig(["--reuse-port"], { REUSE_PORT: "0" }).reusePort, true);
    assert.throws(() => parseConfig([], { REUSE_PORT: "yes" }), /^ConfigError: environment variable REUSE_PORT: expected true, false, 1 or 0, got "yes"$/);
  });

  it("takes the history's bounds from flags, up to their stated maximums", () => {
    const config = parseConfig(["--history-messages", "3", "--history-bytes", "32768", "--history-total-bytes", String(2 ** 21)], {});
    assert.equal(config.historyMessages, 3);
    assert.equal(config.historyBytes, 32768);
    assert.equal(config.historyTotalBytes, 2 ** 21);
    assert.equal(parseConfig(["--history-total-bytes", String(2 ** 40)], {}).historyTotalBytes, 2 ** 40);
    assert.throws(() => parseConfig(["--history-total-bytes", "4095"], {}), /--history-total-bytes/);
  });

  it("gives help as a ConfigError whose message is the usage text", () => {
    assert.throws(() => parseConfig(["--help"], {}), /^ConfigError: Usage: chat-server \[options\]/);
  });

  it("has a default for every setting that has one in the table, and switches on", () => {
    const expected = settingEntries.filter(([, setting]) => !("parse" in setting) || setting.default !== undefined).map(([key]) => key);
    assert.deepEqual(Object.keys(defaultConfig).toSorted(), expected.toSorted());
    assert.equal(defaultConfig.presence, true);
    assert.equal(defaultConfig.leanPath, true);
    assert.equal(defaultConfig.webPort, 8080);
    assert.equal(parseConfig(["--no-web"], { WEB_PORT: "9000" }).webPort, undefined);
    assert.equal(parseConfig(["--no-presence"], {}).presence, false);
  });
});

describe("the default cap on connections", () => {
  const limits = (soft: string) =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft.padEnd(21)}524288               files\n`;

  it("is the soft limit on open files less 256, from 16 to 100,000", () => {
    assert.equal(defaultMaxConnections(limits("20000")), 19744);
    assert.equal(defaultMaxConnections(limits("100")), 16);
    assert.equal(defaultMaxConnections(limits("unlimited")), 768);
    assert.equal(defaultMaxConnections(limits("10000000")), 100_000);
    assert.equal(defaultMaxConnections(""), 768);
  });
});

/** The options of --help: each one's term, the heading it is under, and its description on one line. */
function optionsInHelp(help: string): { term: string; group: string; text: string }[] {
  const options: { term: string; group: string; text: string }[] = [];
  let group = "";
  for (const line of help.split("\n")) {
    const heading = /^(\S.*):$/.exec(line);
    const start = /^ {2}(-\S.*?)(?: {2,}(.*))?$/.exec(line);
    const last = options.at(-1);
    if (heading) group = heading[1] ?? "";
    else if (start && group !== "Examples") options.push({ term: start[1] ?? "", group, text: start[2] ?? "" });
    else if (/^ {3,}\S/.test(line) && last !== undefined && group !== "Examples") last.text += ` ${line.trim()}`;
  }
  return options;
}

describe("--help", () => {
  const help = (() => {
    try {
      parseConfig(["--help"], {});
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
    }
    throw new Error("--help gave no usage text");
  })();
  const options = optionsInHelp(help);

  it("groups the options by topic, in order, and ends with examples", () => {
    const headings = [...help.matchAll(/^(\S.*):$/gm)].map((match) => match[1]);
    assert.deepEqual(headings, [...Object.values(settingGroups), "Examples"]);
    assert.match(help, /\nExamples:\n( {2}.*\n)+$/);
    assert.deepEqual(options.at(-1), { term: "-h, --help", group: "Operations", text: "show this help" });
  });

  it("shows every setting once, under its topic, with its variable and exactly one default", () => {
    const flags = settingEntries.flatMap(([, setting]) => ("unsetBy" in setting && setting.unsetBy ? [setting.flag, setting.unsetBy.flag] : [setting.flag]));
    assert.deepEqual(options.map((o) => o.term).toSorted(), [...flags, "-h, --help"].toSorted());
    for (const [key, setting] of settingEntries) {
      const [option, ...more] = options.filter((o) => o.term === setting.flag);
      assert.ok(option !== undefined && more.length === 0, `${setting.flag} is in --help once`);
      assert.equal(option.group, settingGroups[setting.group], key);
      assert.ok(option.text.startsWith(setting.help), `${key}: ${option.text}`);
      // "(default: …)" and "…, default …" are defaults shown; "the default and the largest page" is not.
      const defaults = option.text.match(/[(,]\s*default\b/g) ?? [];
      if (!("env" in setting)) {
        assert.doesNotMatch(option.text, /\benv\b/, key);
        assert.equal(defaults.length, 0, `${key}: ${option.text}`);
        continue;
      }
      assert.match(option.text, new RegExp(`\\(env ${setting.env}[,)]`), key);
      // Said as the documentation says it, which is Markdown: the same words without the backticks.
      assert.equal(defaults.length, 1, `${key}: ${option.text}`);
      assert.ok(option.text.endsWith(`(env ${setting.env}, default ${settingDefault(setting).replaceAll("`", "")})`), `${key}: ${option.text}`);
      if (setting.unsetBy !== undefined) {
        const unset = options.filter((o) => o.term === setting.unsetBy?.flag);
        assert.deepEqual(unset, [{ term: setting.unsetBy.flag, group: settingGroups[setting.group], text: setting.unsetBy.help }]);
      }
    }
  });

  it("says what the default cap on connections is, not only this machine's number", () => {
    const option = options.find((o) => o.term === "--max-connections <n>");
    assert.match(option?.text ?? "", /\(env MAX_CONNECTIONS, default the file-descriptor limit less 256\)$/);
  });

  it("says the defaults in the documentation's words: off when unset, 0 (off) for a limit that 0 turns off", () => {
    const text = (term: string) => options.find((o) => o.term === term)?.text ?? "";
    assert.match(text("--port <n>"), /\(env PORT, default 50051\)$/);
    assert.match(text("--metrics-port <n>"), /\(env METRICS_PORT, default off\)$/);
    assert.match(text("--redis <url>"), /\(env REDIS_URL, default off\)$/);
    assert.match(text("--jwt-audience <aud>"), /\(env JWT_AUDIENCE, default any\)$/);
    assert.match(text("--send-rate <n>"), /^messages one user may send per second \(env SEND_RATE, default 0 \(off\)\)$/);
    assert.match(text("--resume-grace-ms <n>"), /\(env RESUME_GRACE_MS, default 0 \(off\)\)$/);
  });
});

describe("authorization header", () => {
  it("accepts a username or Bearer <username>", () => {
    assert.deepEqual(parseAuthorization("alice"), { username: "alice" });
    assert.deepEqual(parseAuthorization("Bearer alice"), { username: "alice" });
    assert.deepEqual(parseAuthorization("BEARER  alice "), { username: "alice" });
    assert.deepEqual(parseAuthorization("Bearer Bearer"), { username: "Bearer" });
    const problem = (value: string | null) => {
      const result = parseAuthorization(value);
      return "problem" in result ? result.problem : `no problem: ${result.username}`;
    };
    assert.match(problem("Bearer"), /Bearer scheme but no token/);
    assert.match(problem("bearer   "), /Bearer scheme but no token/);
    assert.match(problem(""), /header is empty/);
    assert.match(problem("   "), /header is empty/);
    assert.match(problem(null), /missing "authorization" header \(one with leading or trailing spaces is dropped/);
    assert.match(problem("Basic YWxpY2U6eA=="), /uses the scheme "Basic", which this server does not accept/);
    assert.match(problem("Bearer alice bob"), /names "alice bob", which is not one username/);
  });
});
