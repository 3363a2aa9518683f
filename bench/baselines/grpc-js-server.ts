/**
 * The grpc-js baseline: the same minimal chat behaviour as the limit baseline,
 * written the way most Node users would write a gRPC chat server, on
 * @grpc/grpc-js with the contract loaded by @grpc/proto-loader. Each
 * recipient's write serializes the message anew, as grpc-js does.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const definition = protoLoader.loadSync("chat/v1/chat.proto", {
  includeDirs: [fileURLToPath(new URL("../../proto", import.meta.url))],
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
// proto-loader builds the package at run time: its shape is the .proto's, which the types cannot know.
const ChatService = (grpc.loadPackageDefinition(definition) as unknown as { chat: { v1: { ChatService: grpc.ServiceClientConstructor } } }).chat.v1.ChatService;

/** A request or response as proto-loader decodes and encodes it: a plain object. */
type Plain = Record<string, unknown>;

const users = new Map<string, grpc.ServerWritableStream<Plain, Plain>>();
const groups = new Map<string, Set<string>>();
const caller = (call: grpc.ServerUnaryCall<Plain, Plain>) => String(call.metadata.get("authorization")[0] ?? "");

const server = new grpc.Server();
server.addService(ChatService.service, {
  connect(call: grpc.ServerWritableStream<Plain, Plain>) {
    const username = String(call.request.username);
    users.set(username, call);
    call.write({ events: [{ connected: { username } }] });
    const cleanup = () => {
      users.delete(username);
      for (const members of groups.values()) members.delete(username);
    };
    call.on("cancelled", cleanup);
    call.on("close", cleanup);
  },
  createGroupChat(call: grpc.ServerUnaryCall<Plain, Plain>, callback: grpc.sendUnaryData<Plain>) {
    groups.set(String(call.request.name), new Set([caller(call)]));
    callback(null, {});
  },
  joinGroupChat(call: grpc.ServerUnaryCall<Plain, Plain>, callback: grpc.sendUnaryData<Plain>) {
    groups.get(String(call.request.name))?.add(caller(call));
    callback(null, {});
  },
  leaveGroupChat(call: grpc.ServerUnaryCall<Plain, Plain>, callback: grpc.sendUnaryData<Plain>) {
    groups.get(String(call.request.name))?.delete(caller(call));
    callback(null, {});
  },
  sendMessage(call: grpc.ServerUnaryCall<Plain, Plain>, callback: grpc.sendUnaryData<Plain>) {
    const channel = String(call.request.channel);
    const text = String(call.request.text);
    const members = groups.get(channel);
    const now = Date.now();
    const message = {
      id: randomUUID(),
      sender: caller(call),
      channel: { name: channel, type: members === undefined ? "CHANNEL_TYPE_USER" : "CHANNEL_TYPE_GROUP" },
      text,
      sentAt: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
    };
    for (const name of members ?? [channel]) users.get(name)?.write({ events: [{ message }] });
    callback(null, {});
  },
  listChannels(_call: grpc.ServerUnaryCall<Plain, Plain>, callback: grpc.sendUnaryData<Plain>) {
    callback(null, { channels: [] });
  },
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ msg: "server listening", port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
