import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import * as grpcJs from "@grpc/grpc-js";
import { createChatClient } from "../../client/chat-client.js";
import { openEventStream } from "../helpers/event-stream.js";
import { eventually } from "../helpers/eventually.js";
import { as, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * Resuming over real connections: the client's connection goes through a
 * proxy that the test cuts, so the server sees a drop, not a goodbye.
 */
describe("resume after a dropped connection", () => {
  let t: TestServer;
  let proxy: TcpProxy;
  before(async () => {
    t = await startTestServer({ resumeGraceMs: 5000, pingIntervalMs: 200, pingTimeoutMs: 200 });
    proxy = await startTcpProxy(t.port);
  });
  after(async () => {
    await proxy.close();
    await t.stop();
  });

  it("holds the session of a reset connection and resumes it with connect-node: same groups, the missed message once", async () => {
    const viaProxy = createChatClient(`http://127.0.0.1:${proxy.port}`, "alice");
    const bob = openEventStream(createChatClient(t.baseUrl, "bob"), { username: "bob", membershipEvents: true });
    await bob.connected();
    const first = openEventStream(viaProxy, { username: "alice", membershipEvents: true });
    const hello = await first.connected();
    await viaProxy.createGroupChat({ name: "crew" });
    await createChatClient(t.baseUrl, "bob").joinGroupChat({ name: "crew" });
    await first.waitFor("joined crew bob");
    const received = first.events.length;

    proxy.drop();
    assert.notEqual((await first.ended)?.code, undefined);
    await eventually(() => t.logs.some((l) => l.msg === "session closed" && l.user === "alice"), "the server saw the stream end");
    await createChatClient(t.baseUrl, "bob").sendMessage({ channel: "crew", text: "while you were away" });
    // The name is held: anyone else is refused, and told why.
    const squatter = openEventStream(createChatClient(t.baseUrl, "alice"), { username: "alice" });
    const refused = await squatter.ended;
    assert.equal(refused?.code, Code.AlreadyExists);
    assert.match(refused?.rawMessage ?? "", /held for its dropped session to resume/);
    assert.ok(!bob.events.some((e) => e.startsWith("left crew alice")), "bob must not see alice leave during the grace");

    const again = openEventStream(createChatClient(t.baseUrl, "alice"), {
      username: "alice",
      membershipEvents: true,
      resumeToken: hello.resumeToken,
      receivedEvents: BigInt(received),
    });
    const back = await again.connected();
    assert.equal(back.resumed, true);
    assert.equal(back.lostEvents, 0n);
    await createChatClient(t.baseUrl, "bob").sendMessage({ channel: "crew", text: "welcome back" });
    await again.waitFor("message bob>crew: welcome back");
    assert.deepEqual(again.events, ["message bob>crew: while you were away", "message bob>crew: welcome back"]);
    again.cancel();
    await eventually(async () => !(await t.server.backend.isOnline("alice")), "a goodbye frees the name at once");
    bob.cancel();
  });

  it("holds the session of a connection found dead by PING, and resumes it with grpc-js", async () => {
    const Chat = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const frozen = await startTcpProxy(t.port);
    const viaProxy = new Chat(`127.0.0.1:${frozen.port}`, grpcJs.credentials.createInsecure());
    const direct = new Chat(`127.0.0.1:${t.port}`, grpcJs.credentials.createInsecure());
    const bob = openEventStream(createChatClient(t.baseUrl, "bob"), { username: "bob" });
    await bob.connected();
    try {
      const first = serverStream<{ events: GrpcJsEvent[] }>(viaProxy, "Connect", { username: "carol" });
      const firstEvents = collect(first);
      await eventually(() => firstEvents.some((e) => e.connected !== undefined), "carol connected");
      const token = firstEvents[0]?.connected?.resumeToken ?? "";
      assert.ok(token.length >= 32);
      await unary(direct, "SendMessage", { channel: "carol", text: "one" }, as("bob"));
      await eventually(() => firstEvents.some((e) => e.message?.text === "one"), "carol got one");

      // The peer vanishes without a goodbye: only PING finds it.
      frozen.freeze();
      await eventually(() => t.logs.some((l) => l.msg === "session closed" && l.user === "carol"), "the server found the dead connection", 5000);
      await unary(direct, "SendMessage", { channel: "carol", text: "two" }, as("bob"));

      const again = serverStream<{ events: GrpcJsEvent[] }>(direct, "Connect", { username: "carol", resumeToken: token, receivedEvents: "1" });
      const events = collect(again);
      await eventually(() => events.some((e) => e.message?.text === "two"), "carol got two after the resume");
      assert.equal(events[0]?.connected?.resumed, true);
      assert.equal(events[0]?.connected?.lostEvents, "0");
      assert.deepEqual(
        events.filter((e) => e.message !== undefined).map((e) => e.message?.text),
        ["two"],
      );
      again.cancel();
      first.cancel();
    } finally {
      viaProxy.close();
      direct.close();
      await frozen.close();
      bob.cancel();
    }
  });

  it("ends a session not resumed within the grace, and its token then opens a fresh session", async () => {
    const short = await startTestServer({ resumeGraceMs: 200 });
    const cut = await startTcpProxy(short.port);
    try {
      const bob = openEventStream(createChatClient(short.baseUrl, "bob"), { username: "bob", membershipEvents: true });
      await bob.connected();
      const dave = openEventStream(createChatClient(`http://127.0.0.1:${cut.port}`, "dave"), { username: "dave" });
      const hello = await dave.connected();
      await createChatClient(short.baseUrl, "bob").createGroupChat({ name: "den" });
      await createChatClient(short.baseUrl, "dave").joinGroupChat({ name: "den" });
      cut.drop();
      await bob.waitFor("left den dave DISCONNECTED");
      const fresh = openEventStream(createChatClient(short.baseUrl, "dave"), { username: "dave", resumeToken: hello.resumeToken, receivedEvents: 0n });
      const back = await fresh.connected();
      assert.equal(back.resumed, false);
      assert.notEqual(back.resumeToken, hello.resumeToken);
      fresh.cancel();
      bob.cancel();
    } finally {
      await cut.close();
      await short.stop();
    }
  });
});

/** An Event as @grpc/proto-loader decodes it (oneofs: true, longs: String). */
interface GrpcJsEvent {
  connected?: { username: string; resumeToken: string; resumed: boolean; lostEvents: string };
  message?: { text: string };
}

function collect(call: grpc.ClientReadableStream<{ events: GrpcJsEvent[] }>): GrpcJsEvent[] {
  const events: GrpcJsEvent[] = [];
  call.on("data", (res: { events: GrpcJsEvent[] }) => events.push(...res.events));
  call.on("error", () => {});
  return events;
}
