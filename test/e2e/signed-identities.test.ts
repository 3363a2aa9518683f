import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK, type JWK, SignJWT, UnsecuredJWT } from "jose";
import { type Browser, chromium } from "playwright-core";
import { createChatClient } from "../../client/chat-client.js";
import { ListChannelsResponseSchema } from "../../gen/chat/v1/chat_pb.js";
import { openStream } from "../helpers/chat-stream.js";
import { rawH2Call } from "../helpers/raw-h2-call.js";
import { redisTopologies } from "../helpers/redis-topology.js";
import { startTestCluster, type TestCluster } from "../helpers/test-cluster.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const secret = "a-test-secret-of-at-least-32-bytes!";
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

/** A token signed with the test secret, for sub, with the claims given. */
function token(sub: string, claims: { exp?: number; nbf?: number; iss?: string; aud?: string } = {}, signWith: Uint8Array = key): Promise<string> {
  let jwt = new SignJWT({ ...(claims.nbf === undefined ? {} : { nbf: claims.nbf }) })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime(claims.exp ?? now() + 600);
  if (claims.iss !== undefined) jwt = jwt.setIssuer(claims.iss);
  if (claims.aud !== undefined) jwt = jwt.setAudience(claims.aud);
  return jwt.sign(signWith);
}

/** Asserts that the call fails with the code, and with a message that matches and does not leak the secret. */
async function refused(call: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  await assert.rejects(call, (e) => {
    const err = ConnectError.from(e);
    assert.equal(Code[err.code], Code[code], err.rawMessage);
    assert.match(err.rawMessage, message);
    assert.ok(!err.rawMessage.includes(secret), "the message leaks the secret");
    return true;
  });
}

describe("signed identities with an HMAC secret", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ jwtSecret: secret, jwtIssuer: "chat-tests", jwtAudience: "chat" });
  });
  after(() => t.stop());
  const signed = (sub: string, claims: { exp?: number; nbf?: number; iss?: string; aud?: string } = {}) =>
    token(sub, { iss: "chat-tests", aud: "chat", ...claims });

  it("lets a user with a valid token connect and chat, acting as the token's user", async () => {
    const alice = createChatClient(t.baseUrl, "alice", { token: await signed("alice") });
    const bob = createChatClient(t.baseUrl, "bob", { token: await signed("bob") });
    const aliceStream = await openStream(alice, "alice");
    const bobStream = await openStream(bob, "bob");
    await alice.sendMessage({ channel: "bob", text: "signed hello" });
    const [message] = await bobStream.waitForMessages(1);
    assert.equal(message?.text, "signed hello");
    assert.equal(message?.sender, "alice");
    aliceStream.cancel();
    bobStream.cancel();
  });

  it("refuses a stream that connects as someone other than its token's user (PERMISSION_DENIED)", async () => {
    const mallory = createChatClient(t.baseUrl, "victim", { token: await signed("mallory") });
    await refused(openStream(mallory, "victim"), Code.PermissionDenied, /the token is "mallory"'s/);
    assert.equal(await t.server.backend.isOnline("victim"), false);
  });

  it("gives a signed user its name back from a group squatting it", async () => {
    const squatter = createChatClient(t.baseUrl, "squatter", { token: await signed("squatter") });
    const squatterStream = await openStream(squatter, "squatter");
    await squatter.createGroupChat({ name: "judy" });
    const judy = createChatClient(t.baseUrl, "judy", { token: await signed("judy") });
    const judyStream = await openStream(judy, "judy");
    const channels = (await judy.listChannels({})).channels.map((c) => c.name);
    assert.deepEqual(channels, ["judy", "squatter"]);
    await squatter.sendMessage({ channel: "judy", text: "now you get it" });
    assert.equal((await judyStream.waitForMessages(1))[0]?.text, "now you get it");
    squatterStream.cancel();
    judyStream.cancel();
  });

  it("refuses every bad token with UNAUTHENTICATED and a reason", async () => {
    const logsBefore = t.logs.length;
    const cases: [string, Promise<string> | string, RegExp][] = [
      ["no token", "", /missing "authorization" header/],
      ["not a JWT", "not-a-jwt", /not a well-formed signed JWT/],
      ["expired", signed("carol", { exp: now() - 60 }), /it has expired/],
      ["not yet valid", signed("carol", { nbf: now() + 600 }), /not valid yet/],
      [
        "wrongly signed",
        token("carol", { iss: "chat-tests", aud: "chat" }, new TextEncoder().encode("another-secret-of-32-bytes-or-more")),
        /signature does not verify/,
      ],
      ["wrong issuer", signed("carol", { iss: "someone-else" }), /"iss" claim/],
      ["wrong audience", signed("carol", { aud: "another-service" }), /"aud" claim/],
      [
        "no expiry",
        new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("carol").setIssuer("chat-tests").setAudience("chat").sign(key),
        /it has no "exp" claim/,
      ],
      [
        "alg none",
        new UnsecuredJWT({}).setSubject("carol").setIssuer("chat-tests").setAudience("chat").setExpirationTime("10m").encode(),
        /algorithm is not one this server accepts/,
      ],
    ];
    for (const [name, pending, message] of cases) {
      const value = await pending;
      const client = createChatClient(t.baseUrl, "carol", value === "" ? {} : { token: value });
      // Without a token the client sends the username, which is not a token.
      const expected = value === "" ? /not a well-formed signed JWT/ : message;
      await refused(openStream(client, "carol"), Code.Unauthenticated, expected).catch((error: unknown) => {
        throw new Error(`${name}: ${String(error)}`);
      });
      await refused(client.listChannels({}), Code.Unauthenticated, expected);
    }
    assert.equal(await t.server.backend.isOnline("carol"), false);
    // The gate runs before the interceptors, and its refusals are logged as any failed call is.
    const refusals = t.logs.slice(logsBefore).filter((l) => l.msg === "call failed" && l.rpc === "ListChannels" && l.code === "UNAUTHENTICATED");
    assert.equal(refusals.length, cases.length, "each refused token's call is logged");
    assert.ok(refusals.some((l) => /it has expired/.test(String(l.error))));
  });

  it("refuses an address's calls unchecked once it presented --token-failures-per-ip refused tokens in a minute", async () => {
    const strict = await startTestServer({ jwtSecret: secret, tokenFailuresPerIp: 3 });
    try {
      const forger = createChatClient(strict.baseUrl, "forger", {
        token: await token("forger", {}, new TextEncoder().encode("a-guessed-secret-of-32-bytes-long!")),
      });
      for (let i = 0; i < 3; i++) await refused(forger.listChannels({}), Code.Unauthenticated, /signature does not verify/);
      await refused(forger.listChannels({}), Code.ResourceExhausted, /too many refused tokens from this address \(at most 3 a minute\): retry in \d+ s/);
    } finally {
      await strict.stop();
    }
  });

  it("refuses a call without a token before parsing its body, on both gRPC paths", async () => {
    const connectOnly = await startTestServer({ jwtSecret: secret, leanPath: false });
    try {
      for (const server of [t, connectOnly]) {
        const session = http2.connect(`http://127.0.0.1:${server.port}`);
        // Bytes that are not a ListChannelsRequest: INTERNAL, were they parsed first.
        const answer = await rawH2Call(session, "/chat.v1.ChatService/ListChannels", Buffer.from([0xff, 0xff, 0xff]), ListChannelsResponseSchema);
        session.close();
        assert.equal(answer.trailers["grpc-status"], String(Code.Unauthenticated));
        assert.match(decodeURIComponent(String(answer.trailers["grpc-message"])), /missing "authorization" header/);
      }
    } finally {
      await connectOnly.stop();
    }
  });

  it("ends a live stream with UNAUTHENTICATED when its token expires", async () => {
    // Expired 3 s ago: still within the 5 s leeway, so it ends about 2 s from now.
    const dave = createChatClient(t.baseUrl, "dave", { token: await signed("dave", { exp: now() - 3 }) });
    const stream = await openStream(dave, "dave");
    const ended = await stream.ended;
    assert.equal(ended?.code, Code.Unauthenticated);
    assert.match(ended?.rawMessage ?? "", /token of "dave" has expired/);
    assert.equal(await t.server.backend.isOnline("dave"), false);
  });
});

describe("signed identities with a public key", () => {
  let t: TestServer;
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
  let ecServer: TestServer;
  before(async () => {
    const ecFile = join(tmpdir(), `chat-ec-${process.pid}.pem`);
    writeFileSync(ecFile, pair.publicKey.export({ type: "spki", format: "pem" }));
    ecServer = await startTestServer({ jwtPublicKey: ecFile });
    const rsaFile = join(tmpdir(), `chat-rsa-${process.pid}.pem`);
    writeFileSync(rsaFile, rsaPem);
    t = await startTestServer({ jwtPublicKey: rsaFile });
  });
  after(async () => {
    await t.stop();
    await ecServer.stop();
  });

  it("accepts ES256 tokens signed by the key's pair", async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setSubject("erin").setExpirationTime("10m").sign(pair.privateKey);
    const erin = createChatClient(ecServer.baseUrl, "erin", { token: jwt });
    const stream = await openStream(erin, "erin");
    stream.cancel();
  });

  it("refuses algorithm confusion: an HS256 token made with the RSA public key as its secret", async () => {
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("frank")
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(rsaPem));
    const frank = createChatClient(t.baseUrl, "frank", { token: forged });
    await refused(openStream(frank, "frank"), Code.Unauthenticated, /algorithm is not one this server accepts/);
  });

  it("accepts RS256 tokens signed by the key's pair", async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "RS256" }).setSubject("grace").setExpirationTime("10m").sign(rsa.privateKey);
    const grace = createChatClient(t.baseUrl, "grace", { token: jwt });
    const stream = await openStream(grace, "grace");
    stream.cancel();
  });
});

describe("signed identities with a JWKS URL", () => {
  let t: TestServer;
  let jwks: http.Server;
  let fetches = 0;
  const keys: JWK[] = [];
  const first = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rotated = generateKeyPairSync("ec", { namedCurve: "P-256" });

  before(async () => {
    keys.push({ ...(await exportJWK(first.publicKey)), kid: "one", alg: "ES256", use: "sig" });
    jwks = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    t = await startTestServer({ jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json` });
  });
  after(async () => {
    await t.stop();
    jwks.close();
  });

  const signWith = (pair: typeof first, kid: string, sub: string) =>
    new SignJWT({}).setProtectedHeader({ alg: "ES256", kid }).setSubject(sub).setExpirationTime("10m").sign(pair.privateKey);

  it("verifies with the fetched keys, and within the cool-down refuses a key it does not know without fetching again", async () => {
    const heidi = createChatClient(t.baseUrl, "heidi", { token: await signWith(first, "one", "heidi") });
    const stream = await openStream(heidi, "heidi");
    assert.equal(fetches, 1);
    // A rotated key, published after the first fetch; the cool-down (30 s)
    // has not passed, so the unknown key is refused for now, without a fetch.
    keys.push({ ...(await exportJWK(rotated.publicKey)), kid: "two", alg: "ES256", use: "sig" });
    const ivan = createChatClient(t.baseUrl, "ivan", { token: await signWith(rotated, "two", "ivan") });
    await refused(ivan.listChannels({}), Code.Unauthenticated, /names no key of the key set/);
    assert.equal(fetches, 1);
    stream.cancel();
  });
});

describe("signed identities in cluster mode", () => {
  for (const kind of redisTopologies) {
    // A time limit per topology, so that one run does not eat into the other's.
    describe(kind, { timeout: 60_000 }, () => {
      let cluster: TestCluster | undefined;
      after(() => cluster?.stop());

      it("verifies tokens on every node on its own, and users on different nodes chat", async () => {
        cluster = await startTestCluster(kind, 2, { jwtSecret: secret });
        const { nodes } = cluster;
        const kim = createChatClient(nodes[0]!.baseUrl, "kim", { token: await token("kim") });
        const lee = createChatClient(nodes[1]!.baseUrl, "lee", { token: await token("lee") });
        const kimStream = await openStream(kim, "kim");
        const leeStream = await openStream(lee, "lee");
        await kim.sendMessage({ channel: "lee", text: "across nodes, signed" });
        assert.equal((await leeStream.waitForMessages(1))[0]?.text, "across nodes, signed");
        // A token is checked where the call lands: a forged one fails on either node.
        const forged = await token("lee", {}, new TextEncoder().encode("not-the-secret-but-32-bytes-long!!"));
        await refused(
          createChatClient(nodes[0]!.baseUrl, "lee", { token: forged }).sendMessage({ channel: "kim", text: "x" }),
          Code.Unauthenticated,
          /signature/,
        );
        kimStream.cancel();
        leeStream.cancel();
      });
    });
  }
});

describe("the chat page with signed identities", { timeout: 60_000 }, () => {
  let t: TestServer;
  let browser: Browser;
  before(async () => {
    t = await startTestServer({ jwtSecret: secret });
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser.close();
    await t.stop();
  });

  it("sends the token from its token field, and says why a wrong one is refused", async () => {
    const page = await browser.newPage();
    await page.goto(t.webUrl);
    await page.getByLabel("Username").fill("mia");
    await page.getByLabel("Token").fill("not-a-token");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.locator("#login-error", { hasText: "Not let in: the token was refused" }).waitFor();
    // A token names its user: an empty username field takes the token's.
    await page.getByLabel("Username").fill("");
    await page.getByLabel("Token").fill(await token("mia"));
    assert.equal(await page.getByLabel("Username").inputValue(), "mia");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("status").filter({ hasText: "Connected as mia" }).waitFor();
    assert.equal(await t.server.backend.isOnline("mia"), true);
    await page.close();
  });
});
