/**
 * The limit baseline: a minimal node:http2 server that speaks just enough of
 * chat.v1.ChatService for the benchmark scenarios, and on SendMessage writes
 * one pre-encoded gRPC frame straight to every recipient's stream, doing
 * nothing else: no validation, no flow-control bookkeeping, no queue bound.
 * What it reaches is what HTTP/2 on Node can do on this machine.
 */

import { randomUUID } from "node:crypto";
import * as http2 from "node:http2";
import { encodeFields, forEachField, frame } from "../grpc-wire.js";

const users = new Map<string, http2.ServerHttp2Stream>();
const groups = new Map<string, Set<string>>();
const okHeaders = { ":status": 200, "content-type": "application/grpc+proto" };
const okTrailersOnly = { ...okHeaders, "grpc-status": "0" };

function fields(body: Buffer): Map<number, string> {
  const out = new Map<number, string>();
  if (body.length >= 5) {
    forEachField(body, 5, body.length, (no, from, to) => out.set(no, body.toString("utf8", from, to)));
  }
  return out;
}

function readBody(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
// Node hands this event a ServerHttp2Stream (the session's own "stream" event
// says so), but @types/node 26 types the server's with the base Http2Stream,
// which has no respond(): the parameters say what Node passes.
server.on("stream", async (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
  stream.on("error", () => {});
  const path = String(headers[":path"]);
  const body = await readBody(stream);
  const req = fields(body);
  const caller = String(headers.authorization ?? "");
  switch (path) {
    case "/chat.v1.ChatService/Connect": {
      const username = req.get(1) ?? "";
      users.set(username, stream);
      stream.respond(okHeaders, { waitForTrailers: true });
      stream.write(frame(encodeFields([[1, encodeFields([[1, encodeFields([[1, username]])]])]])));
      stream.on("close", () => {
        users.delete(username);
        for (const members of groups.values()) members.delete(username);
      });
      return;
    }
    case "/chat.v1.ChatService/CreateGroupChat":
      groups.set(req.get(1) ?? "", new Set([caller]));
      break;
    case "/chat.v1.ChatService/JoinGroupChat":
      groups.get(req.get(1) ?? "")?.add(caller);
      break;
    case "/chat.v1.ChatService/LeaveGroupChat":
      groups.get(req.get(1) ?? "")?.delete(caller);
      break;
    case "/chat.v1.ChatService/SendMessage": {
      const channel = req.get(1) ?? "";
      const members = groups.get(channel);
      const type = members === undefined ? "\x01" : "\x02";
      const message = encodeFields([
        [1, randomUUID()],
        [2, caller],
        [3, Buffer.concat([encodeFields([[1, channel]]), Buffer.from([0x10, type.charCodeAt(0)])])],
        [4, req.get(2) ?? ""],
      ]);
      const bytes = frame(encodeFields([[1, encodeFields([[2, message]])]]));
      for (const name of members ?? [channel]) users.get(name)?.write(bytes);
      break;
    }
    default:
      break;
  }
  stream.respond(okTrailersOnly, { endStream: true });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ msg: "server listening", port: address.port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
