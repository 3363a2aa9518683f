import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { type CliProcess, spawnCliProcess } from "../helpers/cli-process.js";
import { eventually } from "../helpers/eventually.js";
import { as, firstContractProtoDir, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

interface GrpcEvent {
  kind: "connected" | "message";
  connected?: { username: string };
  message?: {
    id: string;
    sender: string;
    channel: { name: string; type: string };
    text: string;
    sentAt: { seconds: string; nanos: number };
  };
}

async function rejectsWithStatus(promise: Promise<unknown>, code: grpc.status, messagePart: string): Promise<void> {
  await assert.rejects(promise, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
    assert.ok(err.details.includes(messagePart), err.details);
    return true;
  });
}

describe("two terminal clients and a @grpc/grpc-js client chat together", { timeout: 30_000 }, () => {
  let t: TestServer;
  let alice: CliProcess;
  let bob: CliProcess;
  let carol: grpc.Client;
  let carolStream: grpc.ClientReadableStream<{ events: GrpcEvent[] }>;
  const carolEvents: GrpcEvent[] = [];
  let carolStatus: Promise<grpc.StatusObject>;

  before(async () => {
    t = await startTestServer();
    alice = spawnCliProcess("alice", t.baseUrl);
    bob = spawnCliProcess("bob", t.baseUrl);
    // carol is a client of the contract as first released: what was added since must not reach her.
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService", firstContractProtoDir);
    carol = new ChatService(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    carolStream = serverStream(carol, "connect", { username: "carol" });
    carolStream.on("data", (res: { events: GrpcEvent[] }) => carolEvents.push(...res.events));
    carolStatus = new Promise((resolve) => carolStream.on("status", resolve));
    carolStream.on("error", () => {});
    await Promise.all([alice.waitFor(/^\* connected as alice$/), bob.waitFor(/^\* connected as bob$/)]);
    await eventually(() => carolEvents.length > 0, "carol got no Connected event");
  });

  after(async () => {
    carolStream.cancel();
    carol.close();
    await Promise.all([alice.end(), bob.end()]);
    await t.stop();
  });

  const carolMessages = () => carolEvents.filter((e) => e.kind === "message").map((e) => e.message!);

  it("starts every stream with Connected, exactly as the first contract has it", () => {
    assert.deepEqual(carolEvents[0], { kind: "connected", connected: { username: "carol" } });
  });

  it("sends a first-contract client no event kind it does not know", () => {
    assert.ok(carolEvents.length > 0);
    assert.deepEqual(
      carolEvents.filter((e) => e.kind !== "connected" && e.kind !== "message"),
      [],
    );
  });

  it("delivers group and direct messages across implementations", async () => {
    alice.send("/create trio");
    await alice.waitFor(/^\* created group #trio$/);
    bob.send("/join trio");
    await bob.waitFor(/^\* joined #trio$/);
    await unary(carol, "joinGroupChat", { name: "trio" }, as("carol"));

    const mark = { alice: alice.lines.length, bob: bob.lines.length };
    await unary(carol, "sendMessage", { channel: "trio", text: "hi from grpc-js" }, as("carol"));
    await alice.waitFor(/^\d\d:\d\d:\d\d #trio <carol> hi from grpc-js$/, { after: mark.alice });
    await bob.waitFor(/^\d\d:\d\d:\d\d #trio <carol> hi from grpc-js$/, { after: mark.bob });
    await eventually(() => carolMessages().length === 1, "carol did not get her own group message");

    alice.send("/send carol hello carol, from a terminal");
    await alice.waitFor(/^\* sent to carol$/);
    await eventually(() => carolMessages().length === 2, "carol did not get the direct message");
    const direct = carolMessages()[1]!;
    assert.equal(direct.sender, "alice");
    assert.deepEqual(direct.channel, { name: "carol", type: "CHANNEL_TYPE_USER" });
    assert.equal(direct.text, "hello carol, from a terminal");
    assert.ok(Math.abs(Number(direct.sentAt.seconds) * 1000 - Date.now()) < 10_000);

    bob.send("/to trio");
    bob.send("plain line to the current channel");
    await alice.waitFor(/#trio <bob> plain line to the current channel$/);
    await eventually(() => carolMessages().length === 3, "carol did not get bob's message");
    assert.deepEqual(carolMessages()[2]!.channel, { name: "trio", type: "CHANNEL_TYPE_GROUP" });
    assert.equal(new Set(carolMessages().map((m) => m.id)).size, 3);
  });

  it("lists channels for a grpc-js caller", async () => {
    const res = await unary<{ channels: { name: string; type: string }[] }>(carol, "listChannels", {}, as("Bearer carol"));
    assert.deepEqual(res.channels, [
      { name: "alice", type: "CHANNEL_TYPE_USER" },
      { name: "bob", type: "CHANNEL_TYPE_USER" },
      { name: "carol", type: "CHANNEL_TYPE_USER" },
      { name: "trio", type: "CHANNEL_TYPE_GROUP" },
    ]);
    bob.send("/list");
    await bob.waitFor(/^\* 4 channels: @alice @bob @carol #trio$/);
  });

  it("reports errors with the documented codes on the wire", async () => {
    await rejectsWithStatus(unary(carol, "sendMessage", { channel: "nobody", text: "x" }, as("carol")), grpc.status.NOT_FOUND, '"nobody"');
    await rejectsWithStatus(unary(carol, "createGroupChat", { name: "trio" }, as("carol")), grpc.status.ALREADY_EXISTS, '"trio"');
    await rejectsWithStatus(unary(carol, "listChannels", {}), grpc.status.UNAUTHENTICATED, "authorization");
    await rejectsWithStatus(unary(carol, "leaveGroupChat", { name: "ghost" }, as("carol")), grpc.status.NOT_FOUND, '"ghost"');
    await rejectsWithStatus(unary(carol, "sendMessage", { channel: "trio", text: "" }, as("carol")), grpc.status.INVALID_ARGUMENT, "empty");
    await unary(carol, "leaveGroupChat", { name: "trio" }, as("carol"));
    await rejectsWithStatus(unary(carol, "leaveGroupChat", { name: "trio" }, as("carol")), grpc.status.FAILED_PRECONDITION, "not a member");
    await rejectsWithStatus(unary(carol, "sendMessage", { channel: "trio", text: "x" }, as("carol")), grpc.status.PERMISSION_DENIED, "must join");
    const dup = serverStream<unknown>(carol, "connect", { username: "alice" });
    dup.on("data", () => {});
    dup.on("error", () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => dup.on("status", resolve));
    assert.equal(status.code, grpc.status.ALREADY_EXISTS);
    // Errors print as one line in the terminal client, which keeps going.
    alice.send("/join nowhere");
    await alice.waitFor(/^! NOT_FOUND: group "nowhere" does not exist$/);
    alice.send("/list");
    await alice.waitFor(/^\* 4 channels:/);
  });

  it("frees a terminal user's name and groups when it quits", async () => {
    bob.send("/quit");
    assert.equal(await bob.end(), 0);
    await eventually(async () => !(await t.server.backend.isOnline("bob")), "bob still online");
    const res = await unary<{ channels: { name: string }[] }>(carol, "listChannels", {}, as("carol"));
    assert.deepEqual(
      res.channels.map((c) => c.name),
      ["alice", "carol", "trio"],
    );
    alice.send("/leave trio");
    await alice.waitFor(/^\* left #trio$/);
    // Alice was the last member: the group is gone.
    assert.equal(
      (await t.server.backend.listChannels()).some((c) => c.name === "trio"),
      false,
    );
  });

  it("ends the grpc-js stream with UNAVAILABLE on shutdown", async () => {
    await t.stop();
    const status = await carolStatus;
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.match(status.details, /shutting down/);
    assert.match(await alice.waitFor(/^\* stream ended/), /UNAVAILABLE: the server is shutting down/);
  });
});
