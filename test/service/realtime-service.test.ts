import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { createAuthorizationInterceptor } from "../../client/sdk/authorization-interceptor.js";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { createMemoryBackend, type MemoryBackendOptions } from "../../server/core/memory-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { createRoutes } from "../../server/rpc/routes.js";
import { createHealthStatus } from "../../server/standard/health-status.js";
import { openEventStream } from "../helpers/event-stream.js";
import { eventually } from "../helpers/eventually.js";

/**
 * A server on the in-memory transport. It has no connection to lose, so its
 * streams always end as goodbyes: drops are tested on real connections
 * (test/e2e/resume.test.ts), and here a resume takes over a live stream, as
 * after a blip the server has not noticed yet.
 */
function setup(options: MemoryBackendOptions = {}) {
  const backend = createMemoryBackend(options);
  const routes = createRoutes({ backend, health: createHealthStatus([ChatService.typeName]), logger: createLogger("silent") });
  const transport = (user?: string) =>
    createRouterTransport(routes, user === undefined ? {} : { transport: { interceptors: [createAuthorizationInterceptor(user)] } });
  return { backend, client: (user?: string) => createClient(ChatService, transport(user)) };
}

describe("real-time state over the in-memory transport", () => {
  it("streams membership events to a client that asks, and none to one that does not", async () => {
    const f = setup();
    const alice = openEventStream(f.client(), { username: "alice", membershipEvents: true });
    const old = openEventStream(f.client(), { username: "old" });
    const hello = await alice.connected();
    assert.equal(hello.membershipEvents, true);
    assert.equal(hello.presenceEvents, false);
    assert.equal(hello.resumeToken, "");
    assert.equal(hello.resumeGrace, undefined);
    await old.connected();
    await f.client("alice").createGroupChat({ name: "team" });
    await f.client("old").joinGroupChat({ name: "team" });
    await f.client("alice").sendMessage({ channel: "team", text: "hi" });
    await old.waitFor("message alice>team: hi");
    old.cancel();
    await alice.waitFor("left team old DISCONNECTED");
    assert.deepEqual(alice.events, ["joined team alice", "joined team old", "message alice>team: hi", "left team old DISCONNECTED"]);
    assert.deepEqual(old.events, ["message alice>team: hi"]);
    alice.cancel();
  });

  it("streams presence, coalesced, and says in Connected when the server has it off", async () => {
    const f = setup({ presenceIntervalMs: 20 });
    const watcher = openEventStream(f.client(), { username: "watcher", presenceEvents: true });
    assert.equal((await watcher.connected()).presenceEvents, true);
    const bob = openEventStream(f.client(), { username: "bob" });
    await bob.connected();
    await watcher.waitFor(/^channels \+(watcher,)?bob -$/);
    await f.client("bob").createGroupChat({ name: "room" });
    await watcher.waitFor("channels +room -");
    bob.cancel();
    await watcher.waitFor("channels + -bob,room");
    watcher.cancel();

    const off = setup({ presenceIntervalMs: 0 });
    const refused = openEventStream(off.client(), { username: "watcher", presenceEvents: true });
    assert.equal((await refused.connected()).presenceEvents, false);
    refused.cancel();
  });

  it("lists a group's members a page at a time, for members only", async () => {
    const f = setup();
    const streams = ["ann", "bob", "cat", "dan"].map((u) => openEventStream(f.client(), { username: u }));
    for (const s of streams) await s.connected();
    await f.client("ann").createGroupChat({ name: "team" });
    for (const u of ["bob", "cat"]) await f.client(u).joinGroupChat({ name: "team" });
    const first = await f.client("bob").listGroupMembers({ group: "team", pageSize: 2 });
    assert.deepEqual(first.usernames, ["ann", "bob"]);
    const second = await f.client("bob").listGroupMembers({ group: "team", pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(second.usernames, ["cat"]);
    assert.equal(second.nextPageToken, "");
    const refusals: [Promise<unknown>, Code][] = [
      [f.client("dan").listGroupMembers({ group: "team" }), Code.PermissionDenied],
      [f.client("dan").listGroupMembers({ group: "none" }), Code.NotFound],
      [f.client("bob").listGroupMembers({ group: "team", pageSize: -1 }), Code.InvalidArgument],
      [f.client("bob").listGroupMembers({ group: "team", pageToken: "forged" }), Code.InvalidArgument],
      [f.client("ghost").listGroupMembers({ group: "team" }), Code.Unauthenticated],
    ];
    for (const [call, code] of refusals) {
      await assert.rejects(call, (e: unknown) => e instanceof ConnectError && e.code === code);
    }
    for (const s of streams) s.cancel();
  });

  it("resumes by token, taking the session from its old stream (ABORTED), replaying what the client had not received", async () => {
    const f = setup({ resumeGraceMs: 10_000 });
    const bob = openEventStream(f.client(), { username: "bob" });
    await bob.connected();
    const first = openEventStream(f.client(), { username: "alice", membershipEvents: true });
    const hello = await first.connected();
    assert.ok(hello.resumeToken.length >= 32);
    assert.equal(hello.resumeGrace?.seconds, 10n);
    await f.client("alice").createGroupChat({ name: "team" });
    await f.client("bob").joinGroupChat({ name: "team" });
    await first.waitFor("joined team bob");
    const squatter = openEventStream(f.client(), { username: "alice" });
    assert.equal((await squatter.ended)?.code, Code.AlreadyExists);
    const tooMany = openEventStream(f.client(), { username: "alice", resumeToken: hello.resumeToken, receivedEvents: 3n });
    assert.equal((await tooMany.ended)?.code, Code.InvalidArgument);

    // The client had received one event of two: the second is replayed first.
    const again = openEventStream(f.client(), { username: "alice", resumeToken: hello.resumeToken, receivedEvents: 1n, membershipEvents: true });
    const back = await again.connected();
    assert.equal(back.resumed, true);
    assert.equal(back.lostEvents, 0n);
    assert.equal(back.resumeToken, hello.resumeToken);
    assert.equal((await first.ended)?.code, Code.Aborted);
    await f.client("bob").sendMessage({ channel: "team", text: "after" });
    await again.waitFor("message bob>team: after");
    assert.deepEqual(again.events, ["joined team bob", "message bob>team: after"]);
    // A goodbye (the client cancels) leaves at once, as without a grace.
    again.cancel();
    await again.ended;
    await eventually(() => !f.backend.isOnline("alice"), "alice is still online after her goodbye", 2000);
    bob.cancel();
    f.backend.close();
  });

  it("opens a fresh session, saying so, for a token the server no longer holds", async () => {
    const f = setup({ resumeGraceMs: 10_000 });
    const stream = openEventStream(f.client(), { username: "alice", resumeToken: "expired-or-unknown", receivedEvents: 5n });
    const hello = await stream.connected();
    assert.equal(hello.resumed, false);
    assert.notEqual(hello.resumeToken, "expired-or-unknown");
    stream.cancel();
    // A count with no token to go with it is a client's mistake, said so.
    const stray = openEventStream(f.client(), { username: "zed", receivedEvents: 3n });
    const refused = await stray.ended;
    assert.equal(refused?.code, Code.InvalidArgument);
    assert.match(refused?.rawMessage ?? "", /needs a resume_token/);
    f.backend.close();
  });
});
