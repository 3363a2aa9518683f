import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SignJWT } from "jose";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { eventually } from "../helpers/eventually.js";
import { createTestCa, type TestCa } from "../helpers/test-ca.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const secret = "a-test-secret-of-at-least-32-bytes!";

/**
 * A token the server has never seen: a jti of its own makes it a new string,
 * so the server's cache of verified tokens cannot answer for it and the
 * request gate awaits a signature check while the body arrives.
 */
function freshToken(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setJti(randomUUID())
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(secret));
}

type Protocol = "grpc" | "grpc-web" | "connect-binary" | "connect-json";

/** A Connect client transport for one protocol and HTTP version. */
function transportFor(protocol: Protocol, httpVersion: "1.1" | "2", baseUrl: string, ca: Buffer | undefined): Transport {
  const nodeOptions = ca === undefined ? {} : { ca };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl, nodeOptions });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions });
    case "connect-binary":
      return createConnectTransport({ baseUrl, httpVersion, useBinaryFormat: true, nodeOptions });
    case "connect-json":
      return createConnectTransport({ baseUrl, httpVersion, useBinaryFormat: false, nodeOptions });
  }
}

/** Opens a stream as the user with the token and waits for its Connected event. */
async function signIn(client: Client<typeof ChatService>, user: string, token: string, use: string): Promise<AbortController> {
  const abort = new AbortController();
  const stream = client.connect({ username: user }, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal })[Symbol.asyncIterator]();
  const first = await stream.next();
  assert.equal(first.done, false, `${user}: the stream ended before its first event (the token's ${use} use)`);
  assert.equal(first.value.events[0]?.kind.case, "connected", `${user}: the first event is not Connected (the token's ${use} use)`);
  return abort;
}

/**
 * The calls a signed user makes, each with a token on its first use and
 * again on a later use, and each with a body whose loss the answer shows: a
 * stream (the page's sign-in; an empty body names no user), a group created
 * (an empty body names no group) and a page of one channel (an empty body
 * asks for the default page, which holds every channel).
 */
async function signInAndAct(server: TestServer, transport: Transport, user: string): Promise<void> {
  const client = createClient(ChatService, transport);
  const streamToken = await freshToken(user);
  (await signIn(client, user, streamToken, "first")).abort();
  await eventually(async () => !(await server.server.backend.isOnline(user)), `${user} is still online after cancelling`);
  const stream = await signIn(client, user, streamToken, "later");

  const headers = { authorization: `Bearer ${await freshToken(user)}` };
  for (const use of ["first", "later"]) {
    await client.createGroupChat({ name: `${user}-${use}` }, { headers });
    // The caller and its groups make at least three channels: a page of one has a next page.
    const page = await client.listChannels({ pageSize: 1 }, { headers });
    assert.equal(page.channels.length, 1, `${user}: ListChannels on the token's ${use} use did not get its page_size`);
    assert.notEqual(page.nextPageToken, "", `${user}: ListChannels on the token's ${use} use has no next page`);
  }
  stream.abort();
}

const matrix: { protocol: Protocol; httpVersion: "1.1" | "2" }[] = [
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "connect-binary", httpVersion: "2" },
  { protocol: "connect-binary", httpVersion: "1.1" },
  { protocol: "connect-json", httpVersion: "2" },
  { protocol: "connect-json", httpVersion: "1.1" },
];

describe("a signed token on its first use keeps the request's body, on every protocol", { timeout: 60_000 }, () => {
  let ca: TestCa;
  let secure: TestServer;
  let plain: TestServer;
  before(async () => {
    ca = createTestCa();
    secure = await startTestServer({ tlsCert: ca.certFile, tlsKey: ca.keyFile, jwtSecret: secret });
    plain = await startTestServer({ jwtSecret: secret });
  });
  after(async () => {
    await secure?.stop();
    await plain?.stop();
    ca?.remove();
  });

  for (const { protocol, httpVersion } of matrix) {
    it(`the TLS port: ${protocol} over HTTP/${httpVersion}`, async () => {
      const user = `tls-${protocol}-${httpVersion.replace(".", "")}`;
      await signInAndAct(secure, transportFor(protocol, httpVersion, secure.baseUrl, ca.ca), user);
    });
    // The plain port speaks HTTP/2 alone (h2c); its HTTP/1.1 twin is the web port.
    const plainUrl = () => (httpVersion === "2" ? plain.baseUrl : plain.webUrl);
    if (protocol !== "grpc" || httpVersion === "2") {
      it(`the plain ${httpVersion === "2" ? "port" : "web port"}: ${protocol} over HTTP/${httpVersion}`, async () => {
        const user = `plain-${protocol}-${httpVersion.replace(".", "")}`;
        await signInAndAct(plain, transportFor(protocol, httpVersion, plainUrl(), undefined), user);
      });
    }
  }
});
