import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import type { ChatClient } from "../../client/chat-client.js";
import { createAuthorizationInterceptor } from "../../client/sdk/authorization-interceptor.js";
import { ChannelType, ChatService } from "../../gen/chat/v1/chat_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { createMemoryBackend, type MemoryBackend } from "../../server/core/memory-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { createRoutes } from "../../server/rpc/routes.js";
import { createHealthStatus } from "../../server/standard/health-status.js";
import { openStream } from "../helpers/chat-stream.js";

interface Fixture {
  backend: MemoryBackend;
  transport: Transport;
  client(username?: string): ChatClient;
  logs: Record<string, unknown>[];
}

function setup(hubOptions: Parameters<typeof createMemoryBackend>[0] = {}): Fixture {
  const backend = createMemoryBackend(hubOptions);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const routes = createRoutes({ backend: backend, health: createHealthStatus([ChatService.typeName]), logger: createLogger("info", sink) });
  const transport = createRouterTransport(routes);
  return {
    backend,
    transport,
    logs,
    client(username) {
      return createClient(
        ChatService,
        username === undefined ? transport : createRouterTransport(routes, { transport: { interceptors: [createAuthorizationInterceptor(username)] } }),
      );
    },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: Code, messagePart?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConnectError, `expected a ConnectError, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${Code[code]}, got ${Code[error.code]}: ${error.message}`);
    if (messagePart !== undefined) assert.ok(error.rawMessage.includes(messagePart), error.rawMessage);
    return true;
  });
}

describe("chat service over the in-memory transport", () => {
  it("opens a stream that starts with Connected", async () => {
    const f = setup();
    const alice = await openStream(f.client(), "alice");
    assert.equal(f.backend.isOnline("alice"), true);
    alice.cancel();
    assert.equal((await alice.ended)?.code, Code.Canceled);
    assert.equal(f.backend.isOnline("alice"), false);
    assert.ok(f.logs.some((l) => l.msg === "session opened" && l.user === "alice"));
    assert.ok(f.logs.some((l) => l.msg === "session closed" && l.user === "alice"));
  });

  it("maps every error row of the contract to its status code", async () => {
    const f = setup();
    const alice = f.client("alice");
    const bob = f.client("bob");
    await openStream(f.client(), "alice");
    await openStream(f.client(), "bob");
    await openStream(f.client(), "carol");

    // INVALID_ARGUMENT
    await rejectsWith(openStream(f.client(), ""), Code.InvalidArgument, "username must not be empty");
    await rejectsWith(openStream(f.client(), "x".repeat(33)), Code.InvalidArgument, "33 characters");
    await rejectsWith(openStream(f.client(), "no spaces"), Code.InvalidArgument, '"no spaces"');
    await rejectsWith(alice.createGroupChat({ name: "bad*name" }), Code.InvalidArgument, '"bad*name"');
    await rejectsWith(alice.joinGroupChat({ name: "" }), Code.InvalidArgument, "empty");
    await rejectsWith(alice.leaveGroupChat({ name: "y".repeat(40) }), Code.InvalidArgument, "40 characters");
    await rejectsWith(alice.sendMessage({ channel: "bob", text: "" }), Code.InvalidArgument, "text must not be empty");
    await rejectsWith(alice.sendMessage({ channel: "bob", text: "x".repeat(4097) }), Code.InvalidArgument, "4097 bytes");
    await rejectsWith(alice.sendMessage({ channel: "b b", text: "x" }), Code.InvalidArgument, '"b b"');

    // ALREADY_EXISTS
    await rejectsWith(openStream(f.client(), "alice"), Code.AlreadyExists, '"alice" is already online');
    await alice.createGroupChat({ name: "room" });
    await rejectsWith(openStream(f.client(), "room"), Code.AlreadyExists, "group");
    await rejectsWith(bob.createGroupChat({ name: "room" }), Code.AlreadyExists, '"room" already exists');
    await rejectsWith(bob.createGroupChat({ name: "carol" }), Code.AlreadyExists, "online user");
    await rejectsWith(alice.joinGroupChat({ name: "room" }), Code.AlreadyExists, "already a member");

    // UNAUTHENTICATED
    await rejectsWith(f.client().listChannels({}), Code.Unauthenticated, "missing");
    await rejectsWith(f.client("").listChannels({}), Code.Unauthenticated, "Bearer scheme but no token");
    await rejectsWith(
      f.client("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln").listChannels({}),
      Code.Unauthenticated,
      "this server does not use signed identities",
    );
    await rejectsWith(f.client("dave").sendMessage({ channel: "alice", text: "x" }), Code.Unauthenticated, '"dave"');

    // NOT_FOUND
    await rejectsWith(bob.joinGroupChat({ name: "nope" }), Code.NotFound, '"nope"');
    await rejectsWith(bob.leaveGroupChat({ name: "nope" }), Code.NotFound, '"nope"');
    await rejectsWith(bob.sendMessage({ channel: "nope", text: "x" }), Code.NotFound, '"nope"');

    // FAILED_PRECONDITION
    await rejectsWith(bob.leaveGroupChat({ name: "room" }), Code.FailedPrecondition, "not a member");

    // PERMISSION_DENIED
    await rejectsWith(bob.sendMessage({ channel: "room", text: "x" }), Code.PermissionDenied, "must join");

    // Nothing above changed any state.
    assert.deepEqual(f.backend.listChannels(), [
      { name: "alice", type: "user" },
      { name: "bob", type: "user" },
      { name: "carol", type: "user" },
      { name: "room", type: "group" },
    ]);
    const failures = f.logs.filter((l) => typeof l.code === "string");
    assert.ok(failures.some((l) => l.code === "PERMISSION_DENIED" && l.user === "bob" && l.rpc === "SendMessage"));
  });

  it("accepts a bare username or a Bearer token in authorization", async () => {
    const f = setup();
    await openStream(f.client(), "alice");
    for (const header of ["alice", "Bearer alice", "bearer   alice", "  alice  "]) {
      const client = createClient(
        ChatService,
        createRouterTransport(createRoutes({ backend: f.backend, health: createHealthStatus([]), logger: createLogger("silent") }), {
          transport: {
            interceptors: [
              (next) => (req) => {
                req.header.set("authorization", header);
                return next(req);
              },
            ],
          },
        }),
      );
      const { channels } = await client.listChannels({});
      assert.deepEqual(
        channels.map((c) => c.name),
        ["alice"],
        header,
      );
    }
  });

  it("lists users and groups sorted, with their types", async () => {
    const f = setup();
    await openStream(f.client(), "zoe");
    await openStream(f.client(), "adam");
    await f.client("zoe").createGroupChat({ name: "mid" });
    const { channels } = await f.client("adam").listChannels({});
    assert.deepEqual(
      channels.map((c) => [c.name, c.type]),
      [
        ["adam", ChannelType.USER],
        ["mid", ChannelType.GROUP],
        ["zoe", ChannelType.USER],
      ],
    );
  });

  it("delivers direct and group messages with server-assigned ids and times", async () => {
    const f = setup();
    const aliceStream = await openStream(f.client(), "alice");
    const bobStream = await openStream(f.client(), "bob");
    const alice = f.client("alice");
    const bob = f.client("bob");
    const before = Date.now();
    await alice.sendMessage({ channel: "bob", text: "hi bob" });
    await alice.createGroupChat({ name: "room" });
    await bob.joinGroupChat({ name: "room" });
    await bob.sendMessage({ channel: "room", text: "hi room" });
    await bob.sendMessage({ channel: "bob", text: "self" });
    const [direct, group, self] = await bobStream.waitForMessages(3);
    assert.equal(direct?.sender, "alice");
    assert.deepEqual([direct?.channel?.name, direct?.channel?.type], ["bob", ChannelType.USER]);
    assert.equal(direct?.text, "hi bob");
    assert.deepEqual([group?.channel?.name, group?.channel?.type, group?.sender], ["room", ChannelType.GROUP, "bob"]);
    assert.equal(self?.text, "self");
    const [aliceGroup] = await aliceStream.waitForMessages(1);
    assert.equal(aliceGroup?.id, group?.id);
    assert.equal(new Set([direct?.id, group?.id, self?.id]).size, 3);
    const sentMs = Number(direct?.sentAt?.seconds) * 1000 + (direct?.sentAt?.nanos ?? 0) / 1e6;
    assert.ok(sentMs >= before - 1 && sentMs <= Date.now() + 1, `sent_at ${sentMs} not within the call`);
    // Alice got only the group message (her direct message went to Bob
    // alone): the next thing she receives is a marker sent after both.
    await f.client("bob").sendMessage({ channel: "alice", text: "marker" });
    assert.deepEqual(
      (await aliceStream.waitForMessages(2)).map((m) => m.text),
      [aliceGroup?.text, "marker"],
    );
  });

  it("coalesces events that queue while the stream is busy", async () => {
    const f = setup();
    const alice = await openStream(f.client(), "alice");
    await f.client("alice").createGroupChat({ name: "room" });
    // Queued within one turn of the event loop: the handler wakes once.
    for (let i = 0; i < 1000; i++) f.backend.send("alice", "room", `m${i}`);
    const messages = await alice.waitForMessages(1000);
    assert.deepEqual(
      messages.map((m) => m.text),
      Array.from({ length: 1000 }, (_, i) => `m${i}`),
    );
    // Connected, then 1000 events in batches of at most 512.
    assert.equal(alice.responses, 3);
  });

  it("ends a stream that fell too far behind with RESOURCE_EXHAUSTED and frees the name", async () => {
    const f = setup({ queueLimit: 10 });
    const slow = await openStream(f.client(), "slow");
    const fast = await openStream(f.client(), "fast");
    await f.client("fast").createGroupChat({ name: "room" });
    await f.client("slow").joinGroupChat({ name: "room" });
    // Eleven events in one turn: the eleventh overflows both queues of ten,
    // but only if nobody reads in between; the fast member is then cut too.
    // So give each its own burst: fill "slow" alone with direct messages.
    for (let i = 0; i < 11; i++) f.backend.send("fast", "slow", `m${i}`);
    const error = await slow.ended;
    assert.equal(error?.code, Code.ResourceExhausted);
    assert.match(error?.rawMessage ?? "", /"slow" fell too far behind: 10 events/);
    assert.equal(f.backend.isOnline("slow"), false);
    assert.deepEqual(f.backend.listChannels(), [
      { name: "fast", type: "user" },
      { name: "room", type: "group" },
    ]);
    await f.client("fast").sendMessage({ channel: "room", text: "after" });
    assert.equal((await fast.waitForMessages(1))[0]?.text, "after");
    // The name is free again at once.
    await openStream(f.client(), "slow");
  });

  it("pages ListChannels (AIP-158): tokens, sizes, and what it refuses", async () => {
    const f = setup({ maxGroupsPerUser: 1000 });
    for (let u = 0; u < 3; u++) {
      f.backend.connect(`user${u}`);
      for (let g = 0; g < 800; g++) f.backend.createGroup(`user${u}`, `g${u}-${String(g).padStart(4, "0")}`);
    }
    const client = f.client("user0");
    // No page size: the server's default, 1000.
    const first = await client.listChannels({});
    assert.equal(first.channels.length, 1000);
    assert.notEqual(first.nextPageToken, "");
    assert.equal((await client.listChannels({ pageSize: 10 })).channels.length, 10);
    assert.equal((await client.listChannels({ pageSize: 50_000 })).channels.length, 1000, "a larger page is lowered to the maximum");
    // Every channel once, in order, across the pages.
    const all: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listChannels({ pageSize: 700, pageToken });
      all.push(...page.channels.map((c) => c.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.equal(all.length, 2403);
    assert.deepEqual(all, [...all].sort());
    assert.equal(new Set(all).size, all.length);
    await rejectsWith(client.listChannels({ pageToken: "not-ours" }), Code.InvalidArgument, "is not one this server issued");
    await rejectsWith(client.listChannels({ pageToken: Buffer.from("v1:bad name!").toString("base64url") }), Code.InvalidArgument, "is not one");
    await rejectsWith(client.listChannels({ pageSize: -1 }), Code.InvalidArgument, "page_size must not be negative");
  });

  it("answers SendMessage with the message delivered, and ListMessages with the history, a page at a time, bound to its caller and channel", async () => {
    const f = setup();
    const alice = await openStream(f.client(), "alice");
    const bob = await openStream(f.client(), "bob");
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push((await f.client("alice").sendMessage({ channel: "bob", text: `m${i}`, requestId: `r${i}` })).message);
    const delivered = await bob.waitForMessages(5);
    // The very message: same id, sender, channel, time and text.
    assert.deepEqual(sent, delivered);
    const again = await f.client("alice").sendMessage({ channel: "bob", text: "m0", requestId: "r0" });
    assert.deepEqual(again.message, delivered[0]);
    const first = await f.client("bob").listMessages({ channel: "alice", pageSize: 2 });
    assert.deepEqual(first.messages, [delivered[4], delivered[3]]);
    assert.notEqual(first.nextPageToken, "");
    const second = await f.client("bob").listMessages({ channel: "alice", pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(second.messages, [delivered[2], delivered[1]]);
    const last = await f.client("bob").listMessages({ channel: "alice", pageSize: 2, pageToken: second.nextPageToken });
    assert.deepEqual(last.messages, [delivered[0]]);
    assert.equal(last.nextPageToken, "");
    // Nothing was delivered twice.
    assert.equal(bob.messages.length, 5);
    // A token is its caller's, for its channel.
    await openStream(f.client(), "carol");
    await rejectsWith(f.client("carol").listMessages({ channel: "alice", pageToken: first.nextPageToken }), Code.InvalidArgument, "was not issued for");
    await rejectsWith(f.client("bob").listMessages({ channel: "carol", pageToken: first.nextPageToken }), Code.InvalidArgument, "was not issued for");
    await rejectsWith(f.client("bob").listMessages({ channel: "alice", pageToken: "not-ours" }), Code.InvalidArgument, "was not issued for");
    await rejectsWith(f.client("bob").listMessages({ channel: "alice", pageSize: -1 }), Code.InvalidArgument, "page_size must not be negative");
    await rejectsWith(f.client("bob").listMessages({ channel: "nobody" }), Code.NotFound, "nobody");
    await rejectsWith(f.client("bob").listMessages({ channel: "bad name" }), Code.InvalidArgument, "channel");
    await f.client("alice").createGroupChat({ name: "team" });
    await rejectsWith(f.client("bob").listMessages({ channel: "team" }), Code.PermissionDenied, "must be a member");
    await rejectsWith(f.client("alice").sendMessage({ channel: "bob", text: "other", requestId: "r0" }), Code.InvalidArgument, "already used");
    await rejectsWith(f.client("alice").sendMessage({ channel: "bob", text: "long id", requestId: "é".repeat(33) }), Code.InvalidArgument, "at most 64");
    assert.equal(bob.messages.length, 5);
    alice.cancel();
    bob.cancel();
  });

  it("answers ListMessages with FAILED_PRECONDITION when history is off", async () => {
    const f = setup({ history: { messages: 0, bytes: 1 << 20, ttlMs: 60_000, totalBytes: 1 << 24 } });
    const alice = await openStream(f.client(), "alice");
    await f.client("alice").sendMessage({ channel: "alice", text: "a note" });
    await rejectsWith(f.client("alice").listMessages({ channel: "alice" }), Code.FailedPrecondition, "keeps no message history");
    alice.cancel();
  });

  it("serves health checks", async () => {
    const f = setup();
    const health = createClient(Health, f.transport);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await health.check({ service: "chat.v1.ChatService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    await rejectsWith(health.check({ service: "nope.Service" }), Code.NotFound, "nope.Service");
  });
});
