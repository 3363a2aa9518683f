import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createHandlerContext } from "@connectrpc/connect";
import { ChatService, ConnectRequestSchema, type ConnectResponse } from "../../gen/chat/v1/chat_pb.js";
import { ChatError } from "../../server/core/chat-error.js";
import { createMemoryBackend } from "../../server/core/memory-backend.js";
import { createLogger } from "../../server/ops/logger.js";
import { defaultChatServiceOptions } from "../../server/rpc/chat-service.js";
import { createSessionStream } from "../../server/rpc/session-stream.js";

/**
 * The Connect handler called directly, as Connect and the lean path call it:
 * its responses are an iterator written out (SessionCall), which must keep
 * the contract of the async generator it replaced.
 */
function setup() {
  const backend = createMemoryBackend();
  const serve = createSessionStream(backend, createLogger("silent"), defaultChatServiceOptions);
  const open = (username: string) => {
    const ctx = createHandlerContext({
      service: ChatService,
      method: ChatService.method.connect,
      protocolName: "grpc",
      requestMethod: "POST",
      url: "http://localhost/chat.v1.ChatService/Connect",
      // JSON: the responses are messages built to be read, not pre-encoded.
      requestHeader: { "content-type": "application/json" },
    });
    const it = serve(create(ConnectRequestSchema, { username }), ctx)[Symbol.asyncIterator]();
    return { ctx, it };
  };
  return { backend, open };
}

/** The kind of the first event of a response. */
function kind(result: IteratorResult<ConnectResponse>): string | undefined {
  return result.done === true ? "done" : result.value.events[0]?.kind.case;
}

describe("the Connect handler's iterator", () => {
  it("answers Connected, waits for events, and releases the session when returned while a call waits", async () => {
    const f = setup();
    const { it } = f.open("alice");
    assert.equal(kind(await it.next()), "connected");
    assert.equal(f.backend.isOnline("alice"), true);
    const waiting = it.next();
    // Made while next() waits: as in a generator, it runs once that call is over, not inside it.
    const returned = it.return?.();
    let settled = false;
    void returned?.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false);
    f.backend.connect("bob");
    f.backend.send("bob", "alice", "hi");
    assert.equal(kind(await waiting), "message");
    assert.deepEqual(await returned, { done: true, value: undefined });
    assert.equal(f.backend.isOnline("alice"), false);
    assert.equal(kind(await it.next()), "done");
  });

  it("ends the stream with the session's reason when the call's signal aborts while it waits", async () => {
    const f = setup();
    const { ctx, it } = f.open("alice");
    assert.equal(kind(await it.next()), "connected");
    const waiting = it.next();
    ctx.abort(new Error("gone"));
    await assert.rejects(waiting, /gone/);
    assert.equal(f.backend.isOnline("alice"), false);
    assert.equal(kind(await it.next()), "done");
  });

  it("opens no session when returned before its first call, and ends one that throw() reaches", async () => {
    const f = setup();
    const unopened = f.open("alice");
    assert.deepEqual(await unopened.it.return?.(), { done: true, value: undefined });
    assert.equal(f.backend.isOnline("alice"), false);
    assert.equal(kind(await unopened.it.next()), "done");
    const { it } = f.open("bob");
    assert.equal(kind(await it.next()), "connected");
    await assert.rejects(it.throw?.(new Error("from the caller")) ?? Promise.resolve(), /from the caller/);
    assert.equal(f.backend.isOnline("bob"), false);
  });

  it("refuses a name in use without opening a session, and then is done", async () => {
    const f = setup();
    f.backend.connect("alice");
    const { it } = f.open("alice");
    await assert.rejects(it.next(), (error) => error instanceof ChatError && error.kind === "already-exists");
    assert.equal(kind(await it.next()), "done");
  });
});
