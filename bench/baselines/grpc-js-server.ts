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
const ChatService = (grpc.loadPackageDefinition(definition) as any).chat.v1.ChatService as grpc.ServiceClientConstructor;

const users = new Map<string, grpc.ServerWritableStream<any, any>>();
const groups = new Map<string, Set<string>>();
const caller = (call: grpc.ServerUnaryCall<any, any>) => String(call.metadata.get("authorization")[0] ?? "");

const server = new grpc.Server();
server.addService(ChatService.service, {
  connect(call: grpc.ServerWritableStream<any, any>) {
    const username = call.request.username as string;
    users.set(username, call);
    call.write({ events: [{ connected: { username } }] });
    const cleanup = () => {
      users.delete(username);
      for (const members of groups.values()) members.delete(username);
    };
    call.on("cancelled", cleanup);
    call.on("close", cleanup);
  },
  createGroupChat(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) {
    groups.set(call.request.name, new Set([caller(call)]));
    callback(null, {});
  },
  joinGroupChat(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) {
    groups.get(call.request.name)?.add(caller(call));
    callback(null, {});
  },
  leaveGroupChat(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) {
    groups.get(call.request.name)?.delete(caller(call));
    callback(null, {});
  },
  sendMessage(call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) {
    const { channel, text } = call.request as { channel: string; text: string };
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
  listChannels(_call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) {
    callback(null, { channels: [] });
  },
});
server.bindAsync(`127.0.0.1:${process.env.PORT ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ msg: "server listening", port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
