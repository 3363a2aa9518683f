import assert from "node:assert/strict";
import { it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createChatClient } from "../../client/chat-client.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { connectRawH2, grpcHeaders } from "../helpers/raw-h2-client.js";
import { startTestServer } from "../helpers/test-server.js";

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `no series ${series} in:\n${text.slice(0, 2000)}`);
  return Number(line.slice(series.length + 1));
}

it("serves Prometheus metrics whose counters move with the chat", async () => {
  const t = await startTestServer({ metricsPort: 0, queueLimit: 5 });
  try {
    const url = `http://127.0.0.1:${t.server.metricsAddress!.port}/metrics`;
    const before = await (await fetch(url)).text();
    assert.equal(value(before, "chat_sessions_open"), 0);
    assert.equal(value(before, "chat_events_delivered_total"), 0);

    const alice = createChatClient(t.baseUrl, "alice");
    const aliceStream = await openStream(alice, "alice");
    await openStream(createChatClient(t.baseUrl, "bob"), "bob");
    await alice.createGroupChat({ name: "room" });
    for (let i = 0; i < 3; i++) await alice.sendMessage({ channel: "room", text: `m${i}` });
    await aliceStream.waitForMessages(3);
    await assert.rejects(alice.sendMessage({ channel: "nobody", text: "x" }), (e) => ConnectError.from(e).code === Code.NotFound);
    // Six events in one turn overflow Bob's queue of five: he is cut off.
    for (let i = 0; i < 6; i++) await t.server.backend.send("alice", "bob", `burst ${i}`);

    const after = await (await fetch(url)).text();
    assert.equal(value(after, "chat_sessions_open"), 1);
    assert.equal(value(after, "chat_groups"), 1);
    assert.ok(value(after, "chat_events_delivered_total") >= 3);
    assert.ok(value(after, "chat_events_per_response_count") >= 1);
    assert.ok(value(after, "chat_queue_depth_count") >= 1);
    assert.equal(value(after, "chat_slow_consumers_cut_total"), 1);
    assert.equal(value(after, 'grpc_server_handled_total{method="SendMessage",code="OK"}'), 3);
    assert.equal(value(after, 'grpc_server_handled_total{method="SendMessage",code="NOT_FOUND"}'), 1);
    assert.equal(value(after, 'grpc_server_handled_total{method="CreateGroupChat",code="OK"}'), 1);
    // The room's three messages, 704 bytes each (see queuedEventBytes); Alice
    // and Bob's went with Bob when he was cut off.
    assert.equal(value(after, "chat_history_messages"), 3);
    assert.equal(value(after, "chat_history_bytes"), 3 * (2 * 2 + 700));
    assert.equal(value(after, 'grpc_server_handling_seconds_count{method="SendMessage"}'), 4);
    assert.ok(after.includes("process_resident_memory_bytes"));
    assert.equal((await fetch(url.replace("/metrics", "/nope"))).status, 404);
    aliceStream.cancel();
  } finally {
    await t.stop();
  }
});

it("has no history gauges when history is off", async () => {
  const t = await startTestServer({ metricsPort: 0, historyMessages: 0 });
  try {
    const text = await (await fetch(`http://127.0.0.1:${t.server.metricsAddress!.port}/metrics`)).text();
    assert.ok(text.includes("chat_sessions_open"));
    assert.ok(!text.includes("chat_history_"), "history gauges with history off");
  } finally {
    await t.stop();
  }
});

it("answers the probes of orchestrators: /healthz while alive, /readyz until it drains", async () => {
  const t = await startTestServer({ metricsPort: 0, shutdownGraceMs: 5000 });
  const base = `http://127.0.0.1:${t.server.metricsAddress!.port}`;
  // A connection with a request it never finishes keeps the server draining until the grace is over.
  const lingering = await connectRawH2(t.port);
  lingering.request(1, grpcHeaders("/chat.v1.ChatService/ListChannels"), Buffer.from([0, 0, 0, 0, 9]), false);
  try {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), "ready\n");
    assert.equal((await fetch(`${base}/readyz`, { method: "HEAD" })).status, 200);
    assert.equal((await fetch(`${base}/readyz`, { method: "POST" })).status, 405);

    const stopped = t.stop();
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 503, "/readyz still 200 while draining");
    const draining = await fetch(`${base}/readyz`);
    assert.equal(draining.headers.get("cache-control"), "no-store");
    assert.equal(await draining.text(), "not ready: the server is draining\n");
    assert.equal((await fetch(`${base}/healthz`)).status, 200, "alive while draining");
    lingering.destroy();
    await stopped;
    await assert.rejects(fetch(`${base}/healthz`), "the metrics port outlived the server");
  } finally {
    lingering.destroy();
    await t.stop();
  }
});
