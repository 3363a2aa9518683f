import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { createChatClient } from "../../client/chat-client.js";
import { SendMessageRequestSchema } from "../../gen/chat/v1/chat_pb.js";
import { openStream } from "../helpers/chat-stream.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

// Clients that misbehave against the gRPC port's stream listener: what the
// lean path declines goes to node's compatibility layer, and whatever answers
// it there must not leave the stream for the client to keep.

/** What became of a stream whose client never ended its request body. */
interface Outcome {
  status: number | undefined;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** The RST_STREAM code it closed with, or undefined while still open. */
  rstCode: number | undefined;
}

/**
 * Opens a stream with these headers, sends a little of a body and never ends
 * it; resolves with what came back once the stream closes, or after waitMs
 * with rstCode undefined when it is still open.
 */
function unfinishedBody(baseUrl: string, headers: http2.OutgoingHttpHeaders, waitMs: number): Promise<Outcome> {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  return new Promise((resolve) => {
    const outcome: Outcome = { status: undefined, trailers: undefined, rstCode: undefined };
    const stream = session.request(headers, { endStream: false });
    stream.on("error", () => {});
    stream.on("response", (h) => (outcome.status = h[":status"]));
    stream.on("trailers", (t) => (outcome.trailers = t));
    stream.resume();
    const onClose = () => {
      clearTimeout(timer);
      outcome.rstCode = stream.rstCode;
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      stream.off("close", onClose);
      session.destroy();
      resolve(outcome);
    }, waitMs);
    stream.on("close", onClose);
    stream.write(Buffer.alloc(1000, 1));
  });
}

describe("the stream listener against hostile clients", { timeout: 60_000 }, () => {
  let t: TestServer;
  before(async () => {
    // The body timeout stays long, so that only the end of the response can close these streams in time.
    t = await startTestServer({ requestBodyTimeoutMs: 60_000 });
  });
  after(() => t.stop());

  it("ends a stream answered before its request body (404, CONNECT, Expect, an early gRPC error) with RST_STREAM NO_ERROR", async () => {
    const grpc = { ":method": "POST", ":path": "/chat.v1.ChatService/ListChannels", "content-type": "application/grpc", te: "trailers" };
    const cases: [string, http2.OutgoingHttpHeaders, (o: Outcome) => void][] = [
      ["an unknown path", { ...grpc, ":path": "/no.Such/Method" }, (o) => assert.equal(o.status, 404)],
      ["CONNECT", { ":method": "CONNECT", ":authority": "localhost:1" }, (o) => assert.equal(o.status, 405)],
      ["an Expect the server does not meet", { ...grpc, ":path": "/no.Such/Method", expect: "something" }, (o) => assert.equal(o.status, 417)],
      // Connect's own handler refuses the encoding before reading the body: its status must still arrive, before the reset.
      ["an encoding the server lacks", { ...grpc, "grpc-encoding": "snappy" }, (o) => assert.equal(o.trailers?.["grpc-status"], "12")],
    ];
    const outcomes = await Promise.all(cases.map(([, headers]) => unfinishedBody(t.baseUrl, headers, 5000)));
    cases.forEach(([name, , check], i) => {
      const outcome = outcomes[i]!;
      assert.equal(
        outcome.rstCode,
        http2.constants.NGHTTP2_NO_ERROR,
        `${name}: ${outcome.rstCode === undefined ? "still open after 5 s" : `reset with ${outcome.rstCode}`}`,
      );
      check(outcome);
    });
  });

  it("answers an Expect on a gRPC call as node does: 100 Continue before the body, 417 for any other", async () => {
    const session = http2.connect(t.baseUrl);
    session.on("error", () => {});
    try {
      const headers = { ":method": "POST", ":path": "/chat.v1.ChatService/ListChannels", "content-type": "application/grpc", te: "trailers" };
      // A client that waits for 100 Continue before it sends its body (curl does for large ones).
      const waiting = session.request({ ...headers, expect: "100-continue" }, { endStream: false });
      waiting.on("error", () => {});
      const continued = await Promise.race([
        new Promise<boolean>((resolve) => waiting.once("continue", () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
      ]);
      waiting.close();
      assert.ok(continued, "no 100 Continue within 3 s");
      const refused = session.request({ ...headers, expect: "something-else" }, { endStream: false });
      refused.on("error", () => {});
      const status = await new Promise((resolve) => refused.once("response", (h) => resolve(h[":status"])));
      refused.close();
      assert.equal(status, 417);
    } finally {
      session.destroy();
    }
  });

  it("ends a lean call's stream with RST_STREAM NO_ERROR once it has answered a body it will not read (1 GiB announced), the client still sending", async () => {
    const session = http2.connect(t.baseUrl);
    session.on("error", () => {});
    try {
      const stream = session.request(
        { ":method": "POST", ":path": "/chat.v1.ChatService/ListChannels", "content-type": "application/grpc", te: "trailers" },
        { endStream: false },
      );
      stream.on("error", () => {});
      stream.resume();
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on("trailers", (h) => (trailers = h));
      const header = Buffer.alloc(5);
      header.writeUInt32BE(2 ** 30, 1);
      stream.write(header);
      // The client goes on sending what it announced, a little at a time.
      const sending = setInterval(() => stream.write(Buffer.alloc(1000)), 20);
      const closed = await Promise.race([
        new Promise<boolean>((resolve) => stream.once("close", () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
      ]);
      clearInterval(sending);
      assert.ok(closed, "the stream was still open 3 s after its answer (the body timeout is 60 s)");
      assert.equal(trailers?.["grpc-status"], "8");
      assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });

  it("answers a request whose authority makes no URL with 400 on either path, and goes on serving", async () => {
    // connect-node throws building such a request's URL: from the stream event, that ended the process.
    const session = http2.connect(t.baseUrl);
    session.on("error", () => {});
    try {
      const statusOf = (headers: http2.OutgoingHttpHeaders) =>
        new Promise<number | undefined>((resolve) => {
          const stream = session.request(headers);
          stream.on("error", () => {});
          stream.on("response", (h) => resolve(h[":status"]));
          stream.on("close", () => resolve(undefined));
          stream.resume();
          stream.end("{}");
        });
      const call = { ":method": "POST", ":path": "/chat.v1.ChatService/ListChannels", te: "trailers", authorization: "nobody" };
      for (const authority of ["[", "[::1"]) {
        assert.equal(await statusOf({ ...call, ":authority": authority, "content-type": "application/json" }), 400, `${authority}, Connect protocol`);
        assert.equal(await statusOf({ ...call, ":authority": authority, "content-type": "application/grpc" }), 400, `${authority}, gRPC`);
      }
      assert.equal(await statusOf({ ...call, "content-type": "application/json" }), 401, "an ordinary call after them");
    } finally {
      session.destroy();
    }
  });

  it("does not serve a call whose stream the body guard reset, though its message had arrived", async () => {
    const guarded = await startTestServer({ requestBodyTimeoutMs: 300 });
    const alice = createChatClient(guarded.baseUrl, "alice");
    const bob = createChatClient(guarded.baseUrl, "bob");
    const aliceStream = await openStream(alice, "alice");
    const bobStream = await openStream(bob, "bob");
    const session = http2.connect(guarded.baseUrl);
    session.on("error", () => {});
    try {
      // A whole message, and the request never ended: reset by the guard (CANCEL) when its time is up.
      const message = Buffer.from(toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel: "bob", text: "never served" })));
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      const stream = session.request(
        { ":method": "POST", ":path": "/chat.v1.ChatService/SendMessage", "content-type": "application/grpc", te: "trailers", authorization: "alice" },
        { endStream: false },
      );
      stream.on("error", () => {});
      stream.resume();
      stream.write(frame);
      await new Promise((resolve) => stream.on("close", resolve));
      assert.equal(stream.rstCode, http2.constants.NGHTTP2_CANCEL);
      // Alice's messages to bob arrive in the order they were served: the first bob gets is the marker.
      await alice.sendMessage({ channel: "bob", text: "marker" });
      const [first] = await bobStream.waitForMessages(1);
      assert.equal(first?.text, "marker");
    } finally {
      session.destroy();
      aliceStream.cancel();
      bobStream.cancel();
      await guarded.stop();
    }
  });
});
