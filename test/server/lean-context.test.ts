import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { createLeanContext } from "../../server/transport/lean/lean-context.js";
import { createShutdownSignal } from "../../server/transport/shutdown-signal.js";

function context(shutdownSignal: AbortSignal, timeoutMs?: number) {
  return createLeanContext({
    method: ChatService.method.sendMessage,
    url: "http://localhost/chat.v1.ChatService/SendMessage",
    timeoutMs,
    shutdownSignal,
    requestHeader: { authorization: "alice", ":path": "/chat.v1.ChatService/SendMessage" },
    responseHeader: { "content-type": "application/grpc+proto" },
    responseTrailer: { "grpc-status": "0" },
    values: createContextValues(),
  });
}

// The lean path's handler context must behave as Connect's createHandlerContext.
describe("a lean call's context", () => {
  it("has what a handler reads, as Connect's context has it", () => {
    const ctx = context(createShutdownSignal().signal, 60_000);
    assert.equal(ctx.service, ChatService);
    assert.equal(ctx.requestHeader.get("authorization"), "alice");
    assert.equal(ctx.responseTrailer.get("grpc-status"), "0");
    const left = ctx.timeoutMs();
    assert.ok(left !== undefined && left > 59_000 && left <= 60_000, `${left}`);
    assert.equal(context(createShutdownSignal().signal).timeoutMs(), undefined);
    ctx.abort();
  });

  it("aborts with DEADLINE_EXCEEDED when its deadline passes, and at once when it has passed", async () => {
    const shutdown = createShutdownSignal();
    const ctx = context(shutdown.signal, 5);
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    assert.ok(ctx.signal.reason instanceof ConnectError);
    assert.equal(ctx.signal.reason.code, Code.DeadlineExceeded);
    assert.equal(shutdown.listeners, 0, "the call no longer listens for shutdown");
    const late = context(shutdown.signal, 0);
    assert.equal((late.signal.reason as ConnectError).code, Code.DeadlineExceeded);
  });

  it("aborts with the shutdown's reason, and stops listening once the call has ended", () => {
    const shutdown = createShutdownSignal();
    const ended = context(shutdown.signal, 60_000);
    const live = context(shutdown.signal);
    // Both hand out their signal, as a handler that listens to it does.
    assert.equal(ended.signal.aborted || live.signal.aborted, false);
    assert.equal(shutdown.listeners, 2);
    const done = new ConnectError("the call has ended", Code.Canceled);
    ended.abort(done);
    assert.equal(shutdown.listeners, 1);
    const reason = new ConnectError("the server is shutting down", Code.Unavailable);
    shutdown.abort(reason);
    assert.equal(live.signal.reason, reason);
    assert.equal(ended.signal.reason, done);
    assert.equal(context(shutdown.signal).signal.reason, reason, "a call that starts after shutdown is aborted at once");
  });

  it("listens for nothing until its signal is read, and then gives what it would have had", async () => {
    const shutdown = createShutdownSignal();
    const unread = context(shutdown.signal, 60_000);
    assert.equal(shutdown.listeners, 0, "no listener for a signal nobody holds");
    unread.abort(new ConnectError("the call has ended", Code.Canceled));
    assert.equal(shutdown.listeners, 0);
    assert.equal((unread.signal.reason as ConnectError).message, "[canceled] the call has ended", "read after its end, it is aborted with the end's reason");
    assert.equal(shutdown.listeners, 0, "and does not listen afterwards");

    const late = context(shutdown.signal, 5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((late.signal.reason as ConnectError).code, Code.DeadlineExceeded, "read after its deadline, it has timed out");

    const afterShutdown = context(shutdown.signal);
    const reason = new ConnectError("the server is shutting down", Code.Unavailable);
    shutdown.abort(reason);
    assert.equal(afterShutdown.signal.reason, reason, "read after the shutdown, it has its reason");
  });
});
