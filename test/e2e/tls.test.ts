import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import * as tls from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { SignJWT } from "jose";
import { type Browser, chromium } from "playwright-core";
import { createChatClient } from "../../client/chat-client.js";
import { createChatServer } from "../../server/chat-server.js";
import { ConfigError } from "../../server/ops/config-error.js";
import { createLogger } from "../../server/ops/logger.js";
import { defaultConfig } from "../../server/ops/server-settings.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { as, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { redisTopologies } from "../helpers/redis-topology.js";
import { createTestCa, type TestCa } from "../helpers/test-ca.js";
import { startTestCluster, type TestCluster } from "../helpers/test-cluster.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** One HTTP/1.1 request over TLS (ALPN http/1.1), trusting the test CA. */
function http1(port: number, ca: Buffer, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string; alpn: string | false | null };
  return new Promise<Answer>((resolve, reject) => {
    const agent = new https.Agent({ ca, ALPNProtocols: ["http/1.1"], keepAlive: false });
    const req = https.request({ host: "127.0.0.1", port, path, method: init.method ?? "GET", headers: init.headers, agent }, (res) => {
      // An https response comes on a TLS socket.
      const alpn = (res.socket as tls.TLSSocket).alpnProtocol;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, alpn }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The certificate a TLS handshake with the port presents. */
function presentedCertificate(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, ALPNProtocols: ["h2"] }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? "");
      socket.end();
    });
    socket.on("error", reject);
  });
}

describe("TLS on the gRPC port", { timeout: 90_000 }, () => {
  let ca: TestCa;
  let t: TestServer;

  before(async () => {
    ca = createTestCa();
    t = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile });
  });
  after(async () => {
    await t.stop();
    ca.remove();
  });

  it("serves connect-node over HTTP/2 with TLS", async () => {
    assert.match(t.baseUrl, /^https:/);
    const alice = createChatClient(t.baseUrl, "tls-alice", { ca: ca.ca });
    const bob = createChatClient(t.baseUrl, "tls-bob", { ca: ca.ca });
    const aliceStream = await openStream(alice, "tls-alice");
    const bobStream = await openStream(bob, "tls-bob");
    await alice.sendMessage({ channel: "tls-bob", text: "over TLS" });
    assert.equal((await bobStream.waitForMessages(1))[0]?.text, "over TLS");
    assert.ok(t.logs.some((l) => l.msg === "server listening" && l.tls === true && String(l.web).startsWith("https://")));
    aliceStream.cancel();
    bobStream.cancel();
  });

  it("names every port that answers in its listening line, the cleartext web port included", async () => {
    const line = t.logs.find((l) => l.msg === "server listening");
    assert.ok(line !== undefined);
    assert.equal(line.port, t.port);
    assert.equal(line.web, `https://127.0.0.1:${t.port}/`);
    assert.equal(line.cleartextWeb, `${t.webUrl}/`);
    // The cleartext port it names is open, and serves the page.
    const page = await fetch(`${t.webUrl}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
  });

  it("serves grpc-js, an independent implementation, with the CA as its root", async () => {
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    // grpc-js (1.14.7) sends the target's host as the TLS server name, and
    // Node 26 refuses an IP address there (DEP0123; Node 24 only warned): the
    // certificate names localhost too, and grpc-js checks it against that.
    const client = new ChatService(`127.0.0.1:${t.port}`, grpc.credentials.createSsl(ca.ca), { "grpc.ssl_target_name_override": "localhost" });
    const stream = serverStream<{ events: { kind: string; message?: { text: string } }[] }>(client, "connect", { username: "tls-carol" });
    const texts: string[] = [];
    const first = new Promise<void>((resolve) => stream.once("data", () => resolve()));
    stream.on("data", (res) => {
      for (const e of res.events) if (e.kind === "message") texts.push(e.message!.text);
    });
    stream.on("error", () => {});
    await first;
    await unary(client, "sendMessage", { channel: "tls-carol", text: "to myself" }, as("tls-carol"));
    await eventually(() => texts.length > 0, "tls-carol got nothing", 2000);
    assert.deepEqual(texts, ["to myself"]);
    stream.cancel();
    client.close();
  });

  it("serves HTTP/1.1 on the same port by ALPN: the page, with its security headers, and the Connect protocol", async () => {
    const page = await http1(t.port, ca.ca, "/");
    assert.equal(page.alpn, "http/1.1");
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/app.js">/);
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self'/);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    const list = await http1(t.port, ca.ca, "/chat.v1.ChatService/ListChannels", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "nobody" },
      body: "{}",
    });
    // The Connect protocol answered (the caller is not online, so UNAUTHENTICATED, as JSON).
    assert.equal(list.status, 401);
    assert.equal(JSON.parse(list.body).code, "unauthenticated");
  });

  it("cuts off an HTTP/1.1 client that never finishes its request, as the web port does", async () => {
    // The TLS port hands HTTP/1.1 connections to a server that never listens
    // itself, whose timeouts node checks only once told (docs/upstream.md, report 9).
    const slow = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile, webHeadersTimeoutMs: 300, webRequestTimeoutMs: 300 });
    try {
      const socket = tls.connect({ host: "127.0.0.1", port: slow.port, ca: ca.ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
      socket.on("error", () => {});
      let response = "";
      socket.on("data", (chunk: Buffer) => (response += chunk.toString()));
      await new Promise((resolve) => socket.once("secureConnect", resolve));
      assert.equal(socket.alpnProtocol, "http/1.1");
      // Headers that never end.
      socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n");
      const closed = await Promise.race([
        new Promise<boolean>((resolve) => socket.once("close", () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      socket.destroy();
      assert.ok(closed, "the connection was still open 5 s after a 300 ms timeout");
      assert.match(response, /^HTTP\/1\.1 408 /);
    } finally {
      await slow.stop();
    }
  });

  it("cuts off a client that never finishes its TLS handshake, by --settings-timeout-ms", async () => {
    // Before the handshake there is no HTTP/2 session, whose SETTINGS timer
    // would drop a silent client. A tls.Server only reports a handshake that
    // timed out (after 120 s by default) and leaves its socket open: a
    // connection that sent nothing, or half a ClientHello, held its place
    // among --max-connections for ever.
    const slow = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile, settingsTimeoutMs: 300 });
    try {
      const silent = net.connect(slow.port, "127.0.0.1");
      const halfHello = net.connect(slow.port, "127.0.0.1");
      // A TLS record header announcing a 512-byte handshake, and 6 bytes of it.
      halfHello.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
      const closedWithin = (socket: net.Socket, ms: number) => {
        socket.on("error", () => {});
        return Promise.race([
          new Promise<boolean>((resolve) => socket.once("close", () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
        ]);
      };
      const [silentClosed, halfClosed] = await Promise.all([closedWithin(silent, 5000), closedWithin(halfHello, 5000)]);
      silent.destroy();
      halfHello.destroy();
      assert.ok(silentClosed, "a client that sent nothing was still connected 5 s after a 300 ms timeout");
      assert.ok(halfClosed, "a client that sent half a ClientHello was still connected 5 s after a 300 ms timeout");
      // A client that does finish its handshake is served.
      const stream = await openStream(createChatClient(slow.baseUrl, "after-slow-handshakes", { ca: ca.ca }), "after-slow-handshakes");
      stream.cancel();
    } finally {
      await slow.stop();
    }
  });

  it("refuses a client that does not trust the certificate, and stays up", async () => {
    const stranger = createChatClient(t.baseUrl, "tls-stranger");
    // connect-node reports a certificate it cannot verify as INTERNAL, with OpenSSL's reason.
    await assert.rejects(stranger.listChannels({}), (e) => ConnectError.from(e).code === Code.Internal && /certificate/.test(ConnectError.from(e).rawMessage));
    const friend = createChatClient(t.baseUrl, "tls-friend", { ca: ca.ca });
    const stream = await openStream(friend, "tls-friend");
    stream.cancel();
  });

  it("takes a renewed certificate on reload, for new connections", async () => {
    const before = await presentedCertificate(t.port, ca.ca);
    assert.equal(before, new X509Certificate(readFileSync(ca.certFile)).fingerprint256);
    ca.renew();
    assert.equal(t.server.reloadTls(), true);
    const renewed = await presentedCertificate(t.port, ca.ca);
    assert.notEqual(renewed, before);
    assert.equal(renewed, new X509Certificate(readFileSync(ca.certFile)).fingerprint256);
    assert.ok(t.logs.some((l) => l.msg === "TLS certificate reloaded"));
  });
});

describe("TLS configuration", () => {
  it("names the flag and the file when a certificate cannot be read or does not match its key", () => {
    const ca = createTestCa();
    const other = createTestCa();
    try {
      const logger = createLogger("silent");
      const start = (tlsCert: string, tlsKey: string) => () => createChatServer({ ...defaultConfig, port: 0, tlsCert, tlsKey }, logger);
      assert.throws(
        start(`${ca.dir}/missing.pem`, ca.keyFile),
        (e) => e instanceof ConfigError && /^--tls-cert \(TLS_CERT\) .*missing\.pem: cannot read it/.test(e.message),
      );
      assert.throws(
        start(ca.certFile, other.keyFile),
        (e) => e instanceof ConfigError && /not a usable certificate and key/.test(e.message) && !e.message.includes("PRIVATE KEY"),
      );
    } finally {
      ca.remove();
      other.remove();
    }
  });
});

describe("the chat page over TLS in Chromium", { timeout: 90_000 }, () => {
  let ca: TestCa;
  let t: TestServer;
  let browser: Browser;

  before(async () => {
    ca = createTestCa();
    t = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile });
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser.close();
    await t.stop();
    ca.remove();
  });

  it("chats from a page loaded from the TLS port (the test CA's certificate error ignored in this test only)", async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${t.baseUrl}/`);
    await page.getByLabel("Username").fill("tls-page");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("status").filter({ hasText: "Connected as tls-page" }).waitFor();
    const sender = createChatClient(t.baseUrl, "tls-sender", { ca: ca.ca });
    const stream = await openStream(sender, "tls-sender");
    await sender.sendMessage({ channel: "tls-page", text: "hello page over TLS" });
    await page.locator("#channels button", { hasText: "tls-sender" }).click();
    await page.locator("#messages li", { hasText: "hello page over TLS" }).waitFor();
    await page.getByLabel("Message", { exact: true }).fill("hello back");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    assert.equal((await stream.waitForMessages(1))[0]?.text, "hello back");
    stream.cancel();
    await context.close();
  });
});

describe("TLS in cluster mode", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 60_000 }, () => {
      let ca: TestCa | undefined;
      let cluster: TestCluster | undefined;
      after(async () => {
        await cluster?.stop();
        ca?.remove();
      });

      it("serves TLS on every node, and users on different nodes chat", async () => {
        ca = createTestCa();
        cluster = await startTestCluster(kind, 2, { tlsCert: ca.certFile, tlsKey: ca.keyFile });
        const { nodes } = cluster;
        const nia = createChatClient(nodes[0]!.baseUrl, "nia", { ca: ca.ca });
        const oli = createChatClient(nodes[1]!.baseUrl, "oli", { ca: ca.ca });
        const niaStream = await openStream(nia, "nia");
        const oliStream = await openStream(oli, "oli");
        await nia.sendMessage({ channel: "oli", text: "TLS on both nodes" });
        assert.equal((await oliStream.waitForMessages(1))[0]?.text, "TLS on both nodes");
        niaStream.cancel();
        oliStream.cancel();
      });
    });
  }
});

describe("signed identities over TLS", { timeout: 60_000 }, () => {
  let ca: TestCa;
  let t: TestServer;
  const secret = "a-test-secret-of-at-least-32-bytes!";
  before(async () => {
    ca = createTestCa();
    t = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile, jwtSecret: secret });
  });
  after(async () => {
    await t.stop();
    ca.remove();
  });

  it("takes tokens over HTTP/2 and refuses calls without one over HTTP/1.1 on the same port", async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("pat").setExpirationTime("10m").sign(new TextEncoder().encode(secret));
    const pat = createChatClient(t.baseUrl, "pat", { ca: ca.ca, token });
    const stream = await openStream(pat, "pat");
    await pat.sendMessage({ channel: "pat", text: "signed and encrypted" });
    assert.equal((await stream.waitForMessages(1))[0]?.text, "signed and encrypted");
    const anonymous = await http1(t.port, ca.ca, "/chat.v1.ChatService/ListChannels", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "pat" },
      body: "{}",
    });
    assert.equal(anonymous.status, 401);
    assert.match(JSON.parse(anonymous.body).message, /is not "Bearer <token>"/);
    stream.cancel();
  });
});
