import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import { spawnCliProcess } from "../helpers/cli-process.js";
import { createTestCa, type TestCa } from "../helpers/test-ca.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const clientMain = fileURLToPath(new URL("../../client/main.ts", import.meta.url));

function runClient(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", clientMain, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    // No input is an empty one: the client reads to its end at once.
    child.stdin.end(input ?? "");
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
      // Both schemes: a server with TLS is reached over https://.
      assert.match(result.stderr, /expected http:\/\/host:port, https:\/\/host:port \(a server with TLS\) or host:port/);
      assert.equal(result.stdout, "");
    }
  });

  it("asks for --user, or a token that names the user, with exit code 2", async () => {
    const result = await runClient(["--server", t.baseUrl]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^chat-client: give the username to connect as with --user <name>, or a signed token with --token <jwt> \(or CHAT_TOKEN\)/);
  });

  it("says to use the gRPC port when it is pointed at the web port", async () => {
    const web = new URL(t.webUrl);
    const result = await runClient(["--script", "--user", "walt", "--server", t.webUrl]);
    assert.equal(result.code, 1);
    assert.match(
      result.stdout.trim(),
      new RegExp(
        `\\(${web.host.replace(/\./g, "\\.")} does not speak gRPC: if it is the server's web port .*use its gRPC port \\(--port, 50051 by default\\)\\)$`,
      ),
    );
  });

  it("says that the server does not use signed identities when given a token", async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("tina")
      .sign(new TextEncoder().encode("x".repeat(32)));
    const result = await runClient(["--script", "--user", "tina", "--server", t.baseUrl, "--token", token], {}, "/list\n");
    assert.match(result.stdout, /! UNAUTHENTICATED: "authorization" carries a signed token, but this server does not use signed identities/);
    assert.doesNotMatch(result.stdout, /check the token/);
  });

  it("names CHAT_SERVER in its help", async () => {
    const result = await runClient(["--help"]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /env: CHAT_SERVER/);
  });
});

describe("the terminal client against a server with TLS and signed tokens", { timeout: 60_000 }, () => {
  const secret = "a-test-secret-of-at-least-32-bytes!";
  let ca: TestCa;
  let t: TestServer;
  let token: string;
  before(async () => {
    ca = createTestCa();
    t = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile, jwtSecret: secret });
    token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("pat").setExpirationTime("10m").sign(new TextEncoder().encode(secret));
  });
  after(async () => {
    await t.stop();
    ca.remove();
  });

  /** Runs the client with these arguments and no input: it connects, and quits at the end of input, or says why it could not. */
  async function connectWith(args: string[], env: Record<string, string> = {}) {
    const result = await runClient(["--script", ...args], env);
    return { ...result, line: result.stdout.trim() };
  }

  it("connects as the user the token names when --user is not given", async () => {
    const result = await connectWith(["--server", t.baseUrl, "--ca", ca.caFile], { CHAT_TOKEN: token });
    assert.deepEqual([result.code, result.line], [0, "* connected as pat"], result.stderr);
  });

  it("says to pass --token or CHAT_TOKEN when the server asks for a token and none was given", async () => {
    const result = await connectWith(["--user", "pat", "--server", t.baseUrl, "--ca", ca.caFile]);
    assert.equal(result.code, 1);
    // Not the server's words about a token it could not read: no token was given.
    assert.equal(
      result.line,
      "* stream ended: UNAUTHENTICATED: this server asks for a signed token, and none was given (pass it with --token <jwt> or set CHAT_TOKEN)",
    );
  });

  it("says to pass the CA with --ca when the certificate is not trusted, not to run Node.js with another flag", async () => {
    const result = await connectWith(["--server", t.baseUrl, "--token", token]);
    assert.equal(result.code, 1);
    assert.match(
      result.line,
      /^\* stream ended: INTERNAL: unable to verify the first certificate \(.*pass the CA's certificate with --ca FILE or set CHAT_CA\)$/,
    );
    assert.doesNotMatch(result.line, /--use-system-ca/);
  });

  it("says to use https:// when http:// reaches the TLS port", async () => {
    const result = await connectWith(["--server", `http://127.0.0.1:${t.port}`, "--token", token, "--ca", ca.caFile]);
    assert.equal(result.code, 1);
    assert.match(result.line, new RegExp(`^\\* stream ended: .*\\(if the server serves TLS, use https://127\\.0\\.0\\.1:${t.port}\\)$`));
  });

  it("says to check the token when the server refuses the one given", async () => {
    const result = await connectWith(["--user", "pat", "--server", t.baseUrl, "--ca", ca.caFile, "--token", "not-a-jwt"]);
    assert.equal(result.code, 1);
    assert.match(result.line, /^\* stream ended: UNAUTHENTICATED: .*\(check the token given with --token or CHAT_TOKEN: /);
  });
});
