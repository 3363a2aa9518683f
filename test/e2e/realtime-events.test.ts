import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpcJs from "@grpc/grpc-js";
import { createChatClient } from "../../client/chat-client.js";
import { openEventStream } from "../helpers/event-stream.js";
import { eventually } from "../helpers/eventually.js";
import { as, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** An Event as @grpc/proto-loader decodes it (oneofs: true, enums: String). */
interface GrpcJsEvent {
  kind: string;
  memberJoined?: { group: string; username: string };
  memberLeft?: { group: string; username: string; reason: string };
  channelsChanged?: { added: { name: string }[]; removed: { name: string }[] };
  message?: { text: string };
  connected?: { membershipEvents: boolean; presenceEvents: boolean };
}

/** Membership and presence events on a real port, read by grpc-js, an implementation that shares no code with the server's. */
describe("membership and presence events over real connections", () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ presenceIntervalMs: 50 });
  });
  after(() => t.stop());

  it("streams membership events in order with messages, and coalesced presence, to a grpc-js client", async () => {
    const Chat = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const grpc = new Chat(`127.0.0.1:${t.port}`, grpcJs.credentials.createInsecure());
    const events: GrpcJsEvent[] = [];
    const call = serverStream<{ events: GrpcJsEvent[] }>(grpc, "Connect", { username: "hana", membershipEvents: true, presenceEvents: true });
    call.on("data", (res: { events: GrpcJsEvent[] }) => events.push(...res.events));
    call.on("error", () => {});
    try {
      await eventually(() => events.length > 0, "hana connected");
      assert.deepEqual(events[0]?.connected && [events[0].connected.membershipEvents, events[0].connected.presenceEvents], [true, true]);
      await unary(grpc, "CreateGroupChat", { name: "dojo" }, as("hana"));
      const ivan = openEventStream(createChatClient(t.baseUrl, "ivan"), { username: "ivan" });
      await ivan.connected();
      await createChatClient(t.baseUrl, "ivan").joinGroupChat({ name: "dojo" });
      await createChatClient(t.baseUrl, "ivan").sendMessage({ channel: "dojo", text: "osu" });
      ivan.cancel();
      await eventually(() => events.some((e) => e.memberLeft?.username === "ivan"), "hana saw ivan leave");
      const membership = events
        .filter((e) => e.kind !== "channelsChanged" && e.kind !== "connected")
        .map((e) => e.memberJoined?.username ?? e.message?.text ?? `${e.memberLeft?.username} ${e.memberLeft?.reason}`);
      assert.deepEqual(membership, ["hana", "ivan", "osu", "ivan LEAVE_REASON_DISCONNECTED"]);
      await eventually(() => events.some((e) => e.channelsChanged?.removed.some((c) => c.name === "ivan") === true), "hana saw ivan go offline");
      const added = events.flatMap((e) => e.channelsChanged?.added.map((c) => c.name) ?? []);
      // ivan may have come and gone within one interval: then only his removal is sent.
      assert.ok(added.includes("dojo"), JSON.stringify(added));
    } finally {
      call.cancel();
      grpc.close();
    }
  });
});
