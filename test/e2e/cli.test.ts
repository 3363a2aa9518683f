import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { spawnCliProcess } from "../helpers/cli-process.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const clientMain = fileURLToPath(new URL("../../client/main.ts", import.meta.url));

function runClient(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", clientMain, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the terminal client", { timeout: 30_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.stop());

  it("takes host:port as the server, and says what is wrong with a command", async () => {
    const dana = spawnCliProcess("dana", `127.0.0.1:${t.port}`);
    await dana.waitFor(/^\* connected as dana$/);
    for (const [command, answer] of [
      ["/to", /^! \/to needs an argument: \/to <channel>$/],
      ["/sleep abc", /^! \/sleep takes a whole number of milliseconds up to 3600000, got "abc"$/],
      ["/create", /^! \/create needs an argument: \/create <group>$/],
      ["/list", /^\* 1 channel: @dana$/],
      ["/create room", /^\* created group #room$/],
      ["/list", /^\* 2 channels: @dana #room$/],
    ] as const) {
      const after = dana.lines.length;
      dana.send(command);
      await dana.waitFor(answer, { after });
    }
    assert.equal(await dana.end(), 0);
  });

  it("refuses a server address it cannot use, in one line, with exit code 2", async () => {
    for (const [args, env] of [
      [["--user", "x", "--server", "ftp://example"], {}],
      [["--user", "x", "--server", "http://host:1/path"], {}],
      [["--user", "x"], { CHAT_SERVER: "not a url" }],
    ] as const) {
      const result = await runClient([...args], env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^chat-client: option '-s, --server <url>' (argument '.*'|value '.*' from env 'CHAT_SERVER') is invalid\. expected .*\n$/);
      assert.equal(result.stdout, "");
    }
  });

  it("names CHAT_SERVER in its help", async () => {
    const result = await runClient(["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /env: CHAT_SERVER/);
  });
});
