import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createChatClient } from "../../client/chat-client.js";
import { ChatService, SendMessageRequestSchema } from "../../gen/chat/v1/chat_pb.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { grpcFrame, grpcStatus, openStalledStream, rawGrpcCall } from "../helpers/raw-grpc.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe("chat server on a real port, connect-node gRPC clients", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ queueLimit: 64, pingIntervalMs: 200, pingTimeoutMs: 200 });
  });
  after(() => t.stop());

  it("carries a conversation between users, directly and in a group", async () => {
    const alice = createChatClient(t.baseUrl, "conv-alice");
    const bob = createChatClient(t.baseUrl, "conv-bob");
    const aliceStream = await openStream(alice, "conv-alice");
    const bobStream = await openStream(bob, "conv-bob");
    await alice.sendMessage({ channel: "conv-bob", text: "hello, Bob" });
    await alice.createGroupChat({ name: "conv-room" });
    await bob.joinGroupChat({ name: "conv-room" });
    await bob.sendMessage({ channel: "conv-room", text: "hello, room ✓" });
    const bobGot = await bobStream.waitForMessages(2);
    const aliceGot = await aliceStream.waitForMessages(1);
    assert.deepEqual(
      bobGot.map((m) => [m.sender, m.channel?.name, m.text]),
      [
        ["conv-alice", "conv-bob", "hello, Bob"],
        ["conv-bob", "conv-room", "hello, room ✓"],
      ],
    );
    assert.equal(aliceGot[0]?.id, bobGot[1]?.id);
    await bob.leaveGroupChat({ name: "conv-room" });
    await alice.leaveGroupChat({ name: "conv-room" });
    assert.equal(
      (await t.server.backend.listChannels()).some((c) => c.name === "conv-room"),
      false,
    );
    aliceStream.cancel();
    bobStream.cancel();
  });

  it("keeps one order per group and each sender's order under concurrent senders", async () => {
    const senders = ["ord-a", "ord-b", "ord-c", "ord-d"];
    const clients = new Map([...senders, "ord-watch"].map((name) => [name, createChatClient(t.baseUrl, name)]));
    const streams = await Promise.all([...clients].map(([name, client]) => openStream(client, name)));
    await clients.get("ord-a")!.createGroupChat({ name: "ord-room" });
    for (const name of [...senders.slice(1), "ord-watch"]) await clients.get(name)!.joinGroupChat({ name: "ord-room" });
    const perSender = 50;
    await Promise.all(
      senders.map(async (name) => {
        for (let i = 0; i < perSender; i++) {
          await clients.get(name)!.sendMessage({ channel: "ord-room", text: `${name}:${i}` });
        }
      }),
    );
    const total = senders.length * perSender;
    const orders = await Promise.all(streams.map(async (s) => (await s.waitForMessages(total)).map((m) => m.text)));
    for (const order of orders) assert.deepEqual(order, orders[0]);
    for (const name of senders) {
      const mine = orders[0]!.filter((text) => text.startsWith(`${name}:`));
      assert.deepEqual(
        mine,
        Array.from({ length: perSender }, (_, i) => `${name}:${i}`),
      );
    }
    for (const s of streams) s.cancel();
  });

  it("lets exactly one of many racing CreateGroupChat calls win", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `race-${i}`);
    const clients = names.map((name) => createChatClient(t.baseUrl, name));
    const streams = await Promise.all(clients.map((c, i) => openStream(c, names[i]!)));
    const results = await Promise.allSettled(clients.map((c) => c.createGroupChat({ name: "race-room" })));
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    assert.equal(won.length, 1);
    assert.equal(lost.length, 19);
    for (const r of lost) assert.equal(ConnectError.from(r.reason).code, Code.AlreadyExists);
    for (const s of streams) s.cancel();
  });

  it("lets exactly one of many racing Connect calls hold a username", async () => {
    const attempts = await Promise.allSettled(Array.from({ length: 10 }, () => openStream(createChatClient(t.baseUrl, "same-name"), "same-name")));
    const won = attempts.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const r of attempts) {
      if (r.status === "rejected") assert.equal(ConnectError.from(r.reason).code, Code.AlreadyExists);
    }
    (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof openStream>>>).value.cancel();
  });

  it("cleans up when a client cancels its stream", async () => {
    const client = createChatClient(t.baseUrl, "cancel-me");
    const stream = await openStream(client, "cancel-me");
    await client.createGroupChat({ name: "cancel-room" });
    stream.cancel();
    await eventually(async () => !(await t.server.backend.isOnline("cancel-me")), "cancel-me still online");
    assert.equal(
      (await t.server.backend.listChannels()).some((c) => c.name === "cancel-room"),
      false,
    );
    // The name is free again.
    (await openStream(createChatClient(t.baseUrl, "cancel-me"), "cancel-me")).cancel();
  });

  it("cleans up when the TCP connection drops", async () => {
    const proxy = await startTcpProxy(t.port);
    const url = `http://127.0.0.1:${proxy.port}`;
    const client = createChatClient(url, "dropped");
    const stream = await openStream(client, "dropped");
    await client.createGroupChat({ name: "drop-room" });
    proxy.drop();
    await eventually(async () => !(await t.server.backend.isOnline("dropped")), "dropped still online");
    assert.equal(
      (await t.server.backend.listChannels()).some((c) => c.name === "drop-room"),
      false,
    );
    assert.ok((await stream.ended) instanceof ConnectError);
    await proxy.close();
  });

  it("finds a client that vanished without closing, by HTTP/2 PING", async () => {
    const proxy = await startTcpProxy(t.port);
    const client = createChatClient(`http://127.0.0.1:${proxy.port}`, "ghost");
    const stream = await openStream(client, "ghost");
    await client.createGroupChat({ name: "ghost-room" });
    proxy.freeze();
    // Ping every 200 ms, 200 ms to answer: gone well within two seconds.
    await eventually(async () => !(await t.server.backend.isOnline("ghost")), "ghost still online", 3000);
    assert.equal(
      (await t.server.backend.listChannels()).some((c) => c.name === "ghost-room"),
      false,
    );
    assert.ok(t.logs.some((l) => l.msg === "connection dropped: PING unanswered"));
    stream.cancel();
    await proxy.close();
  });

  it("cuts off a client that stops reading, and the others keep receiving", async () => {
    // A raw HTTP/2 client that reads the Connected event, then nothing more.
    const { session, closed } = await openStalledStream(t.baseUrl, "slowpoke");

    const fast = createChatClient(t.baseUrl, "speedy");
    const fastStream = await openStream(fast, "speedy");
    await fast.createGroupChat({ name: "slow-room" });
    const slowpoke = createChatClient(t.baseUrl, "slowpoke");
    await slowpoke.joinGroupChat({ name: "slow-room" });
    const text = "x".repeat(4000);
    const count = 300;
    for (let i = 0; i < count; i++) {
      await fast.sendMessage({ channel: "slow-room", text: `${i} ${text}` });
    }
    const got = await fastStream.waitForMessages(count);
    assert.deepEqual(
      got.map((m) => Number.parseInt(m.text, 10)),
      Array.from({ length: count }, (_, i) => i),
    );
    // The queue of 64 overflowed: the session is gone at once, and the stream
    // that could not be written to is reset with ENHANCE_YOUR_CALM, which gRPC
    // clients report as RESOURCE_EXHAUSTED.
    assert.equal(await t.server.backend.isOnline("slowpoke"), false);
    assert.deepEqual(
      (await t.server.backend.listChannels()).filter((c) => c.name.startsWith("slow")),
      [{ name: "slow-room", type: "group" }],
    );
    assert.equal(await closed, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    const closedLog = t.logs.find((l) => l.msg === "session closed" && l.user === "slowpoke");
    assert.match(String(closedLog?.reason), /fell too far behind: 64 events/);
    session.destroy();
    fastStream.cancel();
  });

  it("serves browsers' protocols on the web port, in binary and in JSON", async () => {
    const sender = createChatClient(t.baseUrl, "web-sender");
    const senderStream = await openStream(sender, "web-sender");
    const transports = {
      "connect-json": createConnectTransport({ baseUrl: t.webUrl, httpVersion: "1.1", useBinaryFormat: false }),
      "connect-binary": createConnectTransport({ baseUrl: t.webUrl, httpVersion: "1.1", useBinaryFormat: true }),
      "grpc-web-binary": createGrpcWebTransport({ baseUrl: t.webUrl, httpVersion: "1.1", useBinaryFormat: true }),
      "grpc-web-json": createGrpcWebTransport({ baseUrl: t.webUrl, httpVersion: "1.1", useBinaryFormat: false }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const stream = await openStream(createClient(ChatService, transport), name);
      await sender.sendMessage({ channel: name, text: `to ${name} ✓` });
      const [got] = await stream.waitForMessages(1);
      assert.deepEqual([got?.sender, got?.channel?.name, got?.text], ["web-sender", name, `to ${name} ✓`], name);
      assert.ok(got?.id !== "" && got?.sentAt !== undefined, name);
      stream.cancel();
    }
    senderStream.cancel();
  });

  it("answers malformed requests with a clear status and lives on", async () => {
    const client = createChatClient(t.baseUrl, "mal-user");
    const stream = await openStream(client, "mal-user");
    const auth = { authorization: "mal-user" };
    const path = "/chat.v1.ChatService/SendMessage";

    // Undecodable bytes are INTERNAL with a "parse binary" message, as in
    // grpc-go and grpc-java; the framework parses before any handler runs.
    const garbage = await rawGrpcCall(t.baseUrl, path, grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), auth);
    assert.equal(grpcStatus(garbage).code, Code.Internal, grpcStatus(garbage).message);
    assert.match(grpcStatus(garbage).message, /^parse binary: /);

    const truncated = await rawGrpcCall(t.baseUrl, path, grpcFrame(Buffer.from([0x0a, 0x05, 0x61])), auth);
    assert.equal(grpcStatus(truncated).code, Code.Internal, grpcStatus(truncated).message);
    assert.match(grpcStatus(truncated).message, /^parse binary: /);

    const badUtf8 = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel: "mal-user", text: "ab" }));
    badUtf8[badUtf8.length - 1] = 0xff;
    const utf8 = await rawGrpcCall(t.baseUrl, path, grpcFrame(badUtf8), auth);
    assert.equal(grpcStatus(utf8).code, Code.Internal, grpcStatus(utf8).message);
    assert.match(grpcStatus(utf8).message, /^parse binary: /);

    const huge = await rawGrpcCall(t.baseUrl, path, grpcFrame(Buffer.alloc(16), 100 * 1024 * 1024), auth);
    assert.equal(grpcStatus(huge).code, Code.ResourceExhausted, grpcStatus(huge).message);

    const bigButSent = Buffer.alloc(200 * 1024, 0x41);
    const tooBig = await rawGrpcCall(t.baseUrl, path, grpcFrame(bigButSent), auth);
    assert.equal(grpcStatus(tooBig).code, Code.ResourceExhausted, grpcStatus(tooBig).message);

    // One good message, then more than the lean path reads: Connect reads the
    // rest and answers, as a server without the lean path does.
    const good = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel: "mal-user", text: "x".repeat(40 * 1024) }));
    const extra = await rawGrpcCall(t.baseUrl, path, Buffer.concat([grpcFrame(good), grpcFrame(good)]), auth);
    assert.equal(grpcStatus(extra).code, Code.Unimplemented, grpcStatus(extra).message);
    assert.match(grpcStatus(extra).message, /extra input message/);

    const notGrpc = await rawGrpcCall(t.baseUrl, path, Buffer.from("hello"), { ...auth, "content-type": "text/plain" });
    assert.equal(notGrpc.status, 415);

    const unknown = await rawGrpcCall(t.baseUrl, "/chat.v1.ChatService/Nope", grpcFrame(Buffer.alloc(0)), auth);
    assert.equal(unknown.status === 404 || grpcStatus(unknown).code === Code.Unimplemented, true);

    // Nothing was delivered, and the server still works.
    await client.sendMessage({ channel: "mal-user", text: "still here" });
    assert.deepEqual(
      (await stream.waitForMessages(1)).map((m) => m.text),
      ["still here"],
    );
    stream.cancel();
  });
});
