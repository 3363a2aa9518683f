import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../server/ops/config-error.js";
import { parseConfig } from "../../server/ops/parse-config.js";
import { defaultConfig } from "../../server/ops/server-settings.js";
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
    assert.equal(config.sweepMs, 2000);
  });

  it("gives help as a ConfigError whose message is the usage text", () => {
    assert.throws(() => parseConfig(["--help"], {}), /^ConfigError: Usage: chat-server \[options\]/);
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
