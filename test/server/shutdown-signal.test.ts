import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { createShutdownSignal } from "../../server/transport/shutdown-signal.js";

/** A handler context made the way Connect makes every call's, linked to the shutdown signal. */
function callContext(shutdownSignal: AbortSignal) {
  return createHandlerContext({
    service: ChatService,
    method: ChatService.method.sendMessage,
    protocolName: "grpc",
    requestMethod: "POST",
    url: "http://localhost/chat.v1.ChatService/SendMessage",
    shutdownSignal,
  });
}

describe("the shutdown signal", () => {
  it("ends every call in flight with its reason, as an AbortSignal would", () => {
    const shutdown = createShutdownSignal();
    const calls = [callContext(shutdown.signal), callContext(shutdown.signal)];
    assert.equal(shutdown.listeners, 2);
    const reason = new ConnectError("the server is shutting down", Code.Unavailable);
    shutdown.abort(reason);
    for (const call of calls) {
      assert.equal(call.signal.aborted, true);
      assert.equal(call.signal.reason, reason);
    }
    assert.equal(shutdown.listeners, 0);
  });

  it("forgets a call once it has ended, and leaves it alone at shutdown", () => {
    const shutdown = createShutdownSignal();
    const ended = callContext(shutdown.signal);
    const live = callContext(shutdown.signal);
    const done = new ConnectError("the call has ended", Code.Canceled);
    ended.abort(done);
    assert.equal(shutdown.listeners, 1);
    shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
    assert.equal(ended.signal.reason, done);
    assert.equal(live.signal.aborted, true);
  });

  it("aborts at once a call that starts after shutdown", () => {
    const shutdown = createShutdownSignal();
    const reason = new ConnectError("the server is shutting down", Code.Unavailable);
    shutdown.abort(reason);
    const late = callContext(shutdown.signal);
    assert.equal(late.signal.reason, reason);
    assert.equal(shutdown.listeners, 0);
  });
});
