import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createChatClient } from "../../client/chat-client.js";
import { createAuthorizationInterceptor } from "../../client/sdk/authorization-interceptor.js";
import { isRetryableSend, newRequestId, sendWithRetry } from "../../client/sdk/send-with-retry.js";
import { ChatService, type SendMessageRequest, SendMessageResponseSchema } from "../../gen/chat/v1/chat_pb.js";
import { openStream } from "../helpers/chat-stream.js";
import { startTestServer } from "../helpers/test-server.js";

/** A sendMessage that fails with the given errors, one a try, then answers with a message whose id is "m1". */
function flakySend(failures: unknown[]) {
  const requests: Partial<SendMessageRequest>[] = [];
  const timeouts: (number | undefined)[] = [];
  return {
    requests,
    timeouts,
    client: {
      async sendMessage(request: Partial<SendMessageRequest>, options?: { timeoutMs?: number }) {
        requests.push({ ...request });
        timeouts.push(options?.timeoutMs);
        const failure = failures.shift();
        if (failure !== undefined) throw failure;
        return create(SendMessageResponseSchema, { message: { id: "m1", sender: "alice", text: request.text ?? "" } });
      },
    },
  };
}

const noWait = () => 0;

describe("sending with retries", () => {
  it("retries a send that timed out or found the server unavailable, with the same request id, and gives the server's message", async () => {
    const send = flakySend([new ConnectError("timed out", Code.DeadlineExceeded), new ConnectError("going away", Code.Unavailable)]);
    const retries: number[] = [];
    const message = await sendWithRetry(send.client, { channel: "bob", text: "hi" }, { delayMs: noWait, onRetry: (n) => retries.push(n) });
    assert.equal(message?.id, "m1");
    assert.equal(send.requests.length, 3);
    const ids = new Set(send.requests.map((r) => r.requestId));
    assert.equal(ids.size, 1, "every try carries the same request id");
    assert.match([...ids][0] ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(
      send.requests.map((r) => [r.channel, r.text]),
      [
        ["bob", "hi"],
        ["bob", "hi"],
        ["bob", "hi"],
      ],
    );
    assert.deepEqual(retries, [1, 2]);
    // Each try has a deadline of its own: a send that hangs times out and is tried again.
    assert.deepEqual(send.timeouts, [10_000, 10_000, 10_000]);
  });

  it("retries a send whose connection was reset, as the transport reports it", async () => {
    const reset = new ConnectError("stream reset", Code.Aborted, undefined, undefined, Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    const send = flakySend([reset]);
    assert.equal((await sendWithRetry(send.client, { channel: "bob", text: "hi" }, { delayMs: noWait }))?.id, "m1");
    assert.equal(send.requests.length, 2);
  });

  it("gives a fresh request id to each message", async () => {
    const send = flakySend([]);
    await sendWithRetry(send.client, { channel: "bob", text: "one" });
    await sendWithRetry(send.client, { channel: "bob", text: "two" });
    assert.notEqual(send.requests[0]?.requestId, send.requests[1]?.requestId);
    assert.notEqual(newRequestId(), newRequestId());
  });

  it("does not retry an error another try would not mend", async () => {
    for (const code of [Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.ResourceExhausted]) {
      const refusal = new ConnectError("no", code);
      const send = flakySend([refusal]);
      await assert.rejects(sendWithRetry(send.client, { channel: "bob", text: "hi" }, { delayMs: noWait }), refusal);
      assert.equal(send.requests.length, 1, Code[code]);
    }
  });

  it("gives up after the last try, with its error", async () => {
    const errors = [1, 2, 3].map((n) => new ConnectError(`down ${n}`, Code.Unavailable));
    const send = flakySend([...errors]);
    await assert.rejects(sendWithRetry(send.client, { channel: "bob", text: "hi" }, { tries: 3, delayMs: noWait }), errors[2]);
    assert.equal(send.requests.length, 3);
  });

  it("waits longer before each retry", async () => {
    const delays: number[] = [];
    const send = flakySend([1, 2, 3].map(() => new ConnectError("down", Code.Unavailable)));
    await sendWithRetry(
      send.client,
      { channel: "bob", text: "hi" },
      {
        delayMs(n) {
          delays.push(n);
          return 1;
        },
      },
    );
    assert.deepEqual(delays, [1, 2, 3]);
  });

  it("counts a cancelled send as no reason to retry", () => {
    const stop = new AbortController();
    stop.abort();
    assert.equal(isRetryableSend(new ConnectError("cancelled", Code.Canceled), stop.signal), false);
    assert.equal(isRetryableSend(new ConnectError("timed out", Code.DeadlineExceeded)), true);
  });

  it("delivers a send whose answer was lost once, on a server, and gives the first try's message", async () => {
    const t = await startTestServer();
    try {
      const bob = createChatClient(t.baseUrl, "bob");
      const bobStream = await openStream(bob, "bob");
      const aliceStream = await openStream(createChatClient(t.baseUrl, "alice"), "alice");
      // The server takes the first try, and its answer is lost on the way back, as on a connection that failed.
      let answers = 0;
      const lossy = createClient(
        ChatService,
        createGrpcTransport({
          baseUrl: t.baseUrl,
          interceptors: [
            createAuthorizationInterceptor("alice"),
            (next) => async (req) => {
              const res = await next(req);
              if (answers++ === 0) throw new ConnectError("the answer was lost", Code.Unavailable);
              return res;
            },
          ],
        }),
      );
      const message = await sendWithRetry(lossy, { channel: "bob", text: "once only" }, { delayMs: noWait });
      assert.equal(answers, 2);
      const [got] = await bobStream.waitForMessages(1);
      assert.equal(got?.id, message?.id, "the retry's answer is the first try's message");
      // Time enough for a second delivery to arrive, were there one.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(
        bobStream.messages.map((m) => m.text),
        ["once only"],
      );
      bobStream.cancel();
      aliceStream.cancel();
    } finally {
      await t.stop();
    }
  });
});
