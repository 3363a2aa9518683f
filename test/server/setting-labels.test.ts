import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createBackend } from "../../server/create-backend.js";
import { createTokenVerifierFromConfig } from "../../server/create-token-verifier.js";
import { ConfigError } from "../../server/ops/config-error.js";
import { createLogger } from "../../server/ops/logger.js";
import { parseConfig } from "../../server/ops/parse-config.js";
import { defaultConfig, type Setting, type SettingKey, serverSettings, settingEntries, settingLabel } from "../../server/ops/server-settings.js";
import { listenOn } from "../../server/transport/listen-on.js";
import { readTlsFiles } from "../../server/transport/tls-files.js";

/**
 * The label of a setting, made here from the table's flag and variable
 * rather than by settingLabel, so that a label typed anywhere else, or made
 * some other way, fails to match.
 */
function tableLabel(key: SettingKey): string {
  const setting: Setting = serverSettings[key];
  return "env" in setting ? `${setting.flag.split(" ")[0]} (${setting.env})` : setting.flag;
}

/** The flag alone, as in "--port". */
function tableFlag(key: SettingKey): string {
  return serverSettings[key].flag.split(" ")[0] ?? "";
}

/** The message of the ConfigError that f throws. */
function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail("no ConfigError");
}

/** The message of the ConfigError that promise rejects with. */
async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail("no ConfigError");
}

describe("labels of settings in error messages", () => {
  const dir = mkdtempSync(join(tmpdir(), "chat-labels-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("are the flag and the variable of the table", () => {
    for (const [key] of settingEntries) assert.equal(settingLabel(key), tableLabel(key));
    assert.equal(settingLabel("tlsCert"), "--tls-cert (TLS_CERT)");
    assert.equal(settingLabel("presence"), "--no-presence");
  });

  it("name the flag or the variable of a bad value", () => {
    let rejecting = 0;
    for (const [key, setting] of settingEntries) {
      if (!("parse" in setting)) continue;
      try {
        setting.parse("!x");
        continue; // Any text will do for this one (a host, a file): there is no bad value to give.
      } catch {
        rejecting++;
      }
      assert.ok(messageOf(() => parseConfig([], { [setting.env]: "!x" })).startsWith(`environment variable ${setting.env}: `), key);
      if (!setting.flag.includes(" <")) {
        // A flag that takes no value turns its setting on; the text after it is an argument too many.
        assert.equal(parseConfig([setting.flag], {})[key], true, key);
        assert.match(
          messageOf(() => parseConfig([setting.flag, "!x"], {})),
          /^too many arguments/,
          key,
        );
        continue;
      }
      assert.match(
        messageOf(() => parseConfig([tableFlag(key), "!x"], {})),
        new RegExp(`^option '${setting.flag}' argument '!x' is invalid\\.`),
        key,
      );
    }
    assert.ok(rejecting > 30, `only ${rejecting} settings reject "!x"`);
  });

  it("name the settings that do not go together", () => {
    const secret = "s".repeat(32);
    const cases: [string[], Record<string, string>, string][] = [
      [[], { JWT_SECRET: secret, JWKS_URL: "https://auth.example/jwks" }, `${tableLabel("jwtSecret")} and ${tableLabel("jwksUrl")}: give one source`],
      [["--jwt-public-key", "k.pem", "--jwks-url", "https://auth.example/jwks"], {}, `${tableLabel("jwtPublicKey")} and ${tableLabel("jwksUrl")}:`],
      [[], { JWT_SECRET: "short" }, `${tableLabel("jwtSecret")}: use at least 32 bytes`],
      [["--tls-key", "k.pem"], {}, `${tableLabel("tlsKey")} needs ${tableLabel("tlsCert")} too`],
      [["--tls-cert", "c.pem"], {}, `${tableLabel("tlsCert")} needs ${tableLabel("tlsKey")} too`],
      [
        ["--jwt-audience", "chat"],
        {},
        `${tableFlag("jwtIssuer")} and ${tableFlag("jwtAudience")} need a source of token keys: ${tableFlag("jwtSecret")}, ${tableFlag("jwtPublicKey")} or ${tableFlag("jwksUrl")}`,
      ],
      [["--web-port", "9000", "--metrics-port", "9000"], {}, `${tableFlag("webPort")} and ${tableFlag("metricsPort")} are both 9000`],
      [
        ["--ping-timeout-ms", "5000"],
        { PING_INTERVAL_MS: "1000" },
        `${tableFlag("pingTimeoutMs")} (5000) must not exceed ${tableFlag("pingIntervalMs")} (1000)`,
      ],
      [["--web-headers-timeout-ms", "40000"], {}, `${tableFlag("webHeadersTimeoutMs")} (40000) must not exceed ${tableFlag("webRequestTimeoutMs")} (30000)`],
    ];
    for (const [argv, env, start] of cases) {
      const message = messageOf(() => parseConfig(argv, env));
      assert.ok(message.startsWith(start), `${JSON.stringify(message)} does not start with ${JSON.stringify(start)}`);
    }
  });

  it("name the setting of a file that cannot be read or used", () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not PEM\n");
    const missing = join(dir, "missing.pem");
    const cases: [() => unknown, string][] = [
      [() => readTlsFiles(missing, junk), `${tableLabel("tlsCert")} ${missing}: cannot read it (`],
      [() => readTlsFiles(junk, missing), `${tableLabel("tlsKey")} ${missing}: cannot read it (`],
      [() => readTlsFiles(junk, junk), `${tableLabel("tlsCert")} ${junk} and ${tableLabel("tlsKey")} ${junk}: not a usable certificate and key (`],
      [() => createTokenVerifierFromConfig({ ...defaultConfig, jwtPublicKey: missing }), `${tableLabel("jwtPublicKey")} ${missing}: cannot read it (`],
      [() => createTokenVerifierFromConfig({ ...defaultConfig, jwtPublicKey: junk }), `${tableLabel("jwtPublicKey")} ${junk}: not a usable public key (`],
    ];
    for (const [f, start] of cases) {
      const message = messageOf(f);
      assert.ok(message.startsWith(start), `${JSON.stringify(message)} does not start with ${JSON.stringify(start)}`);
    }
  });

  it("name the setting of a port or a host that cannot be had, and of a Redis that cannot be reached", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as net.AddressInfo).port; // A TCP server's address is an AddressInfo.
    try {
      for (const key of ["port", "webPort", "metricsPort"] as const) {
        const message = await rejectionOf(listenOn(net.createServer(), port, "127.0.0.1", key));
        assert.equal(message, `${tableLabel(key)} ${port}: 127.0.0.1:${port} is already in use`);
      }
      // Shared, the port is refused only by a holder that does not share it, which the message says.
      const shared = await rejectionOf(listenOn(net.createServer(), port, "127.0.0.1", "port", { reusePort: true }));
      assert.equal(
        shared,
        `${tableLabel("port")} ${port}: 127.0.0.1:${port} is already in use by a process without ${tableFlag("reusePort")}, or of another user`,
      );
      const host = await rejectionOf(listenOn(net.createServer(), 0, "no-such-host.invalid", "port"));
      assert.ok(host.startsWith(`${tableLabel("host")} no-such-host.invalid: `), host);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    // The port is free again: nothing listens on it.
    const backend = createBackend({ ...defaultConfig, redis: `redis://127.0.0.1:${port}` }, createLogger("silent"), () => {});
    const redis = await rejectionOf(backend.start());
    assert.ok(redis.startsWith(`${tableLabel("redis")} redis://127.0.0.1:${port}: cannot reach Redis (`), redis);
  });

  it("are never typed by hand in the server's source unless they are the table's", () => {
    const labels = new Set(settingEntries.map(([key]) => tableLabel(key)));
    const found: string[] = [];
    const server = fileURLToPath(new URL("../../server/", import.meta.url));
    for (const file of readdirSync(server, { recursive: true, encoding: "utf8" })) {
      if (!file.endsWith(".ts")) continue;
      for (const [label] of readFileSync(join(server, file), "utf8").matchAll(/--[a-z][a-z0-9-]* \([A-Z][A-Z0-9_]*\)/g)) {
        found.push(label);
        assert.ok(labels.has(label), `server/${file}: ${label} is not the label of any setting in the table`);
      }
    }
    // At least the example in settingLabel's comment, so that the search is known to work.
    assert.ok(found.includes("--tls-cert (TLS_CERT)"), JSON.stringify(found));
  });
});
