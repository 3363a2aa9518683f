import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createChatClient } from "../../client/chat-client.js";
import { ConnectRequestSchema } from "../../gen/chat/v1/chat_pb.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { as, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { grpcFrame } from "../helpers/raw-grpc.js";
import { connectRawH2, FrameType, grpcHeaders, type RawH2Client, Setting } from "../helpers/raw-h2-client.js";
import { startServerProcess } from "../helpers/server-process.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

// Clients that misbehave on purpose, each against a server of its own: the
// server stays up, what it holds stays within a stated bound, and other users
// keep chatting meanwhile. Every loop here is bounded in count and time.

const MiB = 2 ** 20;

/** A server in a process of its own, so that its memory is its own. */
async function startMeasuredServer(args: string[], heapMb = 0) {
  // Every session line is counted here: none may be summarised.
  const server = startServerProcess(
    ["--port", "0", "--no-web", "--log-burst", "100000", ...args],
    heapMb > 0 ? { NODE_OPTIONS: `--max-old-space-size=${heapMb}` } : {},
  );
  // A flag the server refuses ends it before it listens: say so rather than wait for ever.
  const refused = server.exited.then(({ code }) => Promise.reject(new Error(`the server exited with ${code} before listening: ${server.stderr()}`)));
  const port = await Promise.race([server.listening, refused]);
  return { ...server, port, baseUrl: `http://127.0.0.1:${port}` };
}

/** Polls the server's resident set while `during` runs; resolves with the highest seen. */
async function peakRss(rss: () => number, during: Promise<unknown>): Promise<number> {
  let peak = rss();
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    peak = Math.max(peak, rss());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Math.max(peak, rss());
}

/** A pair of well-behaved users who check, after an attack, that they still chat. */
async function stillChatting(t: { baseUrl: string }, tag: string): Promise<void> {
  const alice = createChatClient(t.baseUrl, `ok-a-${tag}`);
  const bobStream = await openStream(createChatClient(t.baseUrl, `ok-b-${tag}`), `ok-b-${tag}`);
  const aliceStream = await openStream(alice, `ok-a-${tag}`);
  await alice.sendMessage({ channel: `ok-b-${tag}`, text: `still here ${tag}` });
  assert.equal((await bobStream.waitForMessages(1))[0]?.text, `still here ${tag}`);
  aliceStream.cancel();
  bobStream.cancel();
}

const connectPath = "/chat.v1.ChatService/Connect";
const connectBody = (username: string) => grpcFrame(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username })));

describe("hostile clients", { timeout: 120_000 }, () => {
  const servers: TestServer[] = [];
  const clients: RawH2Client[] = [];
  const start = async (overrides: Parameters<typeof startTestServer>[0]) => {
    const t = await startTestServer(overrides);
    servers.push(t);
    return t;
  };
  after(async () => {
    for (const c of clients) c.destroy();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("1,000 Connect streams share one grpc-js channel, all live and all receiving", async () => {
    const t = await start({});
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const channel = new ChatService(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    const received = new Map<string, string>();
    const calls: grpc.ClientReadableStream<{ events: { kind: string; message?: { text: string } }[] }>[] = [];
    const users = Array.from({ length: 1000 }, (_, i) => `gw-${i}`);
    try {
      for (const username of users) {
        const call: (typeof calls)[number] = serverStream(channel, "connect", { username });
        call.on("data", (res) => {
          for (const e of res.events) if (e.kind === "message") received.set(username, e.message!.text);
        });
        call.on("error", () => {});
        calls.push(call);
      }
      await eventually(async () => (await t.server.backend.stats()).users === users.length, "not every stream opened", 20_000);
      // One connection carries them all (plus none other so far).
      assert.equal(t.server.connections, 1);
      await Promise.all(users.map((u) => unary(channel, "sendMessage", { channel: u, text: `to ${u}` }, as(users[0]!))));
      await eventually(() => received.size === users.length, `${received.size} of ${users.length} streams received`, 20_000);
      for (const u of users) assert.equal(received.get(u), `to ${u}`);
    } finally {
      for (const call of calls) call.cancel();
      channel.close();
    }
  });

  it("readers that keep their flow-control window shut are cut off, in bytes, and memory comes back", async () => {
    // V8 may keep at most 128 MB of old objects: a server that held what it
    // was sent would die of it ("JavaScript heap out of memory").
    const t = await startMeasuredServer(["--queue-limit-bytes", String(256 * 1024), "--stall-timeout-ms", "60000"], 128);
    try {
      const sender = createChatClient(t.baseUrl, "flooder");
      const senderStream = await openStream(sender, "flooder");
      const hostile: RawH2Client[] = [];
      for (let i = 0; i < 100; i++) {
        // A window of 0: the server can send nothing, yet the client answers PINGs.
        const c = await connectRawH2(t.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 0]] });
        c.request(1, grpcHeaders(connectPath), connectBody(`shut-${i}`));
        hostile.push(c);
        clients.push(c);
      }
      await eventually(() => t.logs.filter((l) => l.msg === "session opened").length === 101, "not every reader connected");
      const before = t.rssBytes();
      const text = "x".repeat(4096);
      // Up to 100 readers × 1,000 messages × 4 KiB: 400 MiB, were it all kept
      // (4,096 events each were allowed before, whatever their size). Each
      // reader is sent to until it is gone.
      const flood = Promise.all(
        hostile.map(async (_, i) => {
          for (let n = 0; n < 1000; n++) {
            const gone = await sender.sendMessage({ channel: `shut-${i}`, text }).then(
              () => false,
              (err: unknown) => ConnectError.from(err).code === Code.NotFound,
            );
            if (gone) return;
          }
        }),
      );
      const peak = await peakRss(() => t.rssBytes(), flood);
      const closed = () => t.logs.filter((l) => l.msg === "session closed" && String(l.user).startsWith("shut-"));
      await eventually(() => closed().length === 100, `${closed().length} of 100 readers cut off`);
      assert.equal(t.child.exitCode, null, "the server died");
      assert.match(String(closed()[0]?.reason), /bytes were waiting to be read, more than the 262144 allowed/);
      // Each holds at most 256 KiB queued and what node buffered for it (a
      // few responses); the rest of the growth is garbage between collections.
      assert.ok(peak - before < 200 * MiB, `the server grew by ${((peak - before) / MiB).toFixed(1)} MiB during the flood`);
      // Their streams end with a reset once the status cannot reach them.
      await eventually(
        () => hostile.every((c) => c.frames.some((f) => f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) === 11)),
        "no RST_STREAM ENHANCE_YOUR_CALM",
      );
      await stillChatting(t, "window");
      senderStream.cancel();
    } finally {
      await t.stop();
    }
  });

  it("requests that never finish their body hold little, and not for long", async () => {
    const t = await startMeasuredServer(["--request-body-timeout-ms", "2000"]);
    const session = http2.connect(t.baseUrl);
    session.on("error", () => {});
    try {
      const before = t.rssBytes();
      const resets: number[] = [];
      const attack = (async () => {
        // 2,000 unary calls on one connection, each announcing a 65,000-byte
        // message and sending 60,000 bytes of it: 120 MB, were it all kept.
        const partial = Buffer.alloc(60_005);
        partial.writeUInt32BE(65_000, 1);
        const closed: Promise<void>[] = [];
        for (let i = 0; i < 2000; i++) {
          const stream = session.request({
            ":method": "POST",
            ":path": "/chat.v1.ChatService/SendMessage",
            "content-type": "application/grpc",
            te: "trailers",
          });
          stream.on("error", () => {});
          closed.push(new Promise((resolve) => stream.on("close", () => resolve(void resets.push(stream.rstCode ?? 0)))));
          stream.write(partial);
        }
        await Promise.all(closed);
      })();
      const chat = stillChatting(t, "bodies");
      const peak = await peakRss(() => t.rssBytes(), attack);
      await chat;
      // Past 4 MiB of unfinished bodies a stream is reset at once; the rest when their time is up.
      assert.ok(resets.filter((c) => c === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM).length > 0, "none reset for the connection's budget");
      assert.equal(resets.length, 2000);
      assert.ok(
        resets.every((c) => c === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM || c === http2.constants.NGHTTP2_CANCEL),
        `other resets: ${[...new Set(resets)]}`,
      );
      assert.equal(t.child.exitCode, null, "the server died");
      // What is held is at most 4 MiB of unfinished bodies, for at most 2 s;
      // the resident set also takes the garbage of the 120 MB that flowed
      // through before each reset, so this bound is loose.
      assert.ok(peak - before < 256 * MiB, `the server grew by ${((peak - before) / MiB).toFixed(1)} MiB`);
    } finally {
      session.destroy();
      await t.stop();
    }
  });

  it("a flood of distinct channels and large messages stays within the history budget", async () => {
    // Room in all for 58 messages of 4,096 bytes (each weighs 2 × 4,096 +
    // 700 = 8,892, see queuedEventBytes), 3 to a channel.
    const totalBytes = MiB / 2;
    const weight = 2 * 4096 + 700;
    const t = await startMeasuredServer([
      "--history-messages",
      "3",
      "--history-bytes",
      String(4 * weight),
      "--history-total-bytes",
      String(totalBytes),
      "--metrics-port",
      "0",
    ]);
    const opened: { cancel(): void }[] = [];
    try {
      await eventually(() => t.logs.some((l) => l.msg === "metrics listening"), "no metrics port");
      const metricsUrl = `http://127.0.0.1:${t.logs.find((l) => l.msg === "metrics listening")!.port as number}/metrics`;
      const gauge = async (name: string) => {
        const line = (await (await fetch(metricsUrl)).text()).split("\n").find((l) => l.startsWith(`${name} `));
        assert.ok(line !== undefined, `no ${name} among the metrics`);
        return Number(line.slice(name.length + 1));
      };
      const receivers = Array.from({ length: 20 }, (_, i) => `inbox-${i}`);
      for (const name of receivers) opened.push(await openStream(createChatClient(t.baseUrl, name), name));
      const flooders = Array.from({ length: 3 }, (_, f) => ({ name: `flooder-${f}`, client: createChatClient(t.baseUrl, `flooder-${f}`) }));
      for (const f of flooders) opened.push(await openStream(f.client, f.name));
      const before = t.rssBytes();
      const text = "h".repeat(4096);
      // Each flooder: 50 groups of its own with 4 messages each, then 2 to
      // each of 20 users: 720 messages of 4 KiB in 210 channels, 5.6 MB of
      // history were it all kept (210 × 3 × 8,892 bytes within the
      // per-channel bounds alone), 11 times the total.
      const flood = Promise.all(
        flooders.map(async ({ name, client }) => {
          for (let g = 0; g < 50; g++) {
            await client.createGroupChat({ name: `${name}-g${g}` });
            for (let n = 0; n < 4; n++) await client.sendMessage({ channel: `${name}-g${g}`, text });
          }
          for (let round = 0; round < 2; round++) for (const to of receivers) await client.sendMessage({ channel: to, text });
        }),
      );
      // Scraped all along: the history never holds more than its bound.
      let peakHistory = 0;
      const watching = (async () => {
        let done = false;
        void flood.finally(() => (done = true));
        while (!done) {
          peakHistory = Math.max(peakHistory, await gauge("chat_history_bytes"));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const chat = stillChatting(t, "history-during");
      const peak = await peakRss(() => t.rssBytes(), flood);
      await Promise.all([watching, chat]);
      assert.equal(t.child.exitCode, null, "the server died");
      // The newest message of all, one per flooder, sent after the flood.
      const last = new Map<string, { channel: string; id: string }>();
      for (const [f, { name, client }] of flooders.entries()) {
        const { message } = await client.sendMessage({ channel: receivers[f]!, text });
        last.set(name, { channel: receivers[f]!, id: message!.id });
      }
      // The users who chatted meanwhile have gone, and their pair's history with them.
      const gone = (user: string) => t.logs.some((l) => l.msg === "session closed" && l.user === user);
      await eventually(() => gone("ok-a-history-during") && gone("ok-b-history-during"), "the users who chatted are still online");
      const bytes = await gauge("chat_history_bytes");
      const messages = await gauge("chat_history_messages");
      assert.ok(Math.max(peakHistory, bytes) <= totalBytes, `history held ${Math.max(peakHistory, bytes)} bytes, over its ${totalBytes}`);
      assert.equal(bytes, messages * weight);
      // Full to its bound with the newest, not emptied: the oldest of all went first.
      assert.ok(messages >= 20, `only ${messages} messages kept`);
      // What the clients can read adds up to the same: at most 3 to a
      // channel, none left of the oldest groups, each flooder's last message
      // the newest of its pair's history.
      let readable = 0;
      for (const { name, client } of flooders) {
        for (let g = 0; g < 50; g++) {
          const page = await client.listMessages({ channel: `${name}-g${g}` });
          assert.ok(page.messages.length <= 3, `${name}-g${g}: ${page.messages.length} messages`);
          if (g === 0) assert.equal(page.messages.length, 0, `${name}-g0 kept its messages`);
          readable += page.messages.length;
        }
        for (const to of receivers) {
          const page = await client.listMessages({ channel: to });
          assert.ok(page.messages.length <= 3, `${name} and ${to}: ${page.messages.length} messages`);
          readable += page.messages.length;
        }
        const newest = last.get(name)!;
        assert.equal((await client.listMessages({ channel: newest.channel, pageSize: 1 })).messages[0]?.id, newest.id, `${name}'s last message`);
      }
      assert.equal(readable, messages);
      // What the server holds: 2 MiB of history, the streams' queues, and the
      // garbage of 3 MB of texts that flowed through.
      assert.ok(peak - before < 128 * MiB, `the server grew by ${((peak - before) / MiB).toFixed(1)} MiB during the flood`);
      await stillChatting(t, "history-after");
    } finally {
      for (const stream of opened) stream.cancel();
      await t.stop();
    }
  });

  it("a response that waits on flow control past the stall timeout ends its stream", async () => {
    const t = await start({ stallTimeoutMs: 300 });
    const sender = createChatClient(t.baseUrl, "staller");
    const c = await connectRawH2(t.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 0]] });
    clients.push(c);
    c.request(1, grpcHeaders(connectPath), connectBody("stuck"));
    await eventually(async () => await t.server.backend.isOnline("stuck"), "not connected");
    const senderStream = await openStream(sender, "staller");
    // More than node buffers for a stream before a write has to wait.
    for (let i = 0; i < 50; i++) await sender.sendMessage({ channel: "stuck", text: "y".repeat(4000) });
    await eventually(async () => !(await t.server.backend.isOnline("stuck")), "the stalled stream was not cut off", 5000);
    // Logged once the stream, which cannot take its status, has been reset.
    await eventually(() => t.logs.some((l) => l.msg === "session closed" && l.user === "stuck"), "no log line");
    const closed = t.logs.find((l) => l.msg === "session closed" && l.user === "stuck");
    assert.match(String(closed?.reason), /read nothing for 300 ms while a response waited/);
    await stillChatting(t, "stall");
    senderStream.cancel();
  });

  it("the server's queues have a total: the largest are cut off first", async () => {
    const t = await start({ queueLimitBytes: 4 << 20, maxQueuedBytes: 700_000, stallTimeoutMs: 60_000 });
    const sender = createChatClient(t.baseUrl, "filler");
    const senderStream = await openStream(sender, "filler");
    for (let i = 0; i < 3; i++) {
      const c = await connectRawH2(t.port, { settings: [[Setting.INITIAL_WINDOW_SIZE, 0]] });
      clients.push(c);
      c.request(1, grpcHeaders(connectPath), connectBody(`big-${i}`));
    }
    await eventually(async () => (await t.server.backend.stats()).users === 4, "not connected");
    // 1,000 bytes of text weigh 2,700 (see queuedEventBytes), and node takes
    // about 64 KiB of a stream's responses before a write waits (those are
    // written, so no longer counted). big-0 holds the most (about 590,000
    // bytes); big-1 and big-2 (about 105,000 each) take the total past 700,000.
    const text = "z".repeat(1000);
    for (let n = 0; n < 280; n++) await sender.sendMessage({ channel: "big-0", text });
    for (let n = 0; n < 100; n++) for (const to of ["big-1", "big-2"]) await sender.sendMessage({ channel: to, text });
    await eventually(async () => !(await t.server.backend.isOnline("big-0")), "the largest queue was not cut off");
    await eventually(() => t.logs.some((l) => l.msg === "session closed" && l.user === "big-0"), "no log line");
    const reason = String(t.logs.find((l) => l.msg === "session closed" && l.user === "big-0")?.reason);
    assert.match(reason, /the server's queues reached their limit of 700000 bytes, and this stream held the most/);
    assert.equal(await t.server.backend.isOnline("big-1"), true);
    senderStream.cancel();
  });

  it("a connection that never acknowledges SETTINGS holds little, and not for long", async () => {
    const t = await startMeasuredServer(["--settings-timeout-ms", "500"]);
    try {
      const before = t.rssBytes();
      const attack = (async () => {
        const floods: RawH2Client[] = [];
        for (let i = 0; i < 100; i++) {
          const c = await connectRawH2(t.port, { ackSettings: false });
          clients.push(c);
          floods.push(c);
          // 16 fields of 8 KB: a 128 KB header list per stream, before the 16 KiB limit applies.
          const big: [string, string][] = Array.from({ length: 16 }, (_, k) => [`x-pad-${k}`, "p".repeat(8000)]);
          for (let s = 0; s < 20; s++) c.request(1 + 2 * s, grpcHeaders(connectPath, big), undefined, false);
        }
        await Promise.all(floods.map((c) => c.closed));
      })();
      const peak = await peakRss(() => t.rssBytes(), attack);
      // 100 connections × 20 streams × 128 KB would be 256 MB held.
      assert.ok(peak - before < 48 * MiB, `the server grew by ${((peak - before) / MiB).toFixed(1)} MiB`);
      // The log line comes through the server's stdout, which may lag the connection's end.
      await eventually(() => t.logs.some((l) => l.msg === "connection dropped: too many header bytes before acknowledging SETTINGS"), "no log line");
      // One that sends nothing at all is dropped once the settings timeout passes.
      const idle = await connectRawH2(t.port, { ackSettings: false });
      clients.push(idle);
      await idle.closed;
      await eventually(() => t.logs.some((l) => l.msg === "connection dropped: SETTINGS not acknowledged in time"), "no log line");
      await stillChatting(t, "settings");
    } finally {
      await t.stop();
    }
  });

  it("refuses connections past the limit, says so once, and closes idle ones", async () => {
    const t = await start({ maxConnections: 3, idleTimeoutMs: 1000 });
    const held: RawH2Client[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await connectRawH2(t.port);
      clients.push(c);
      held.push(c);
      // A stream keeps the connection from being idle.
      c.request(1, grpcHeaders(connectPath), connectBody(`held-${i}`));
    }
    await eventually(async () => (await t.server.backend.stats()).users === 3, "not connected");
    for (let i = 0; i < 20; i++) {
      const extra = await connectRawH2(t.port);
      await extra.closed;
    }
    assert.equal(t.logs.filter((l) => l.msg === "connection limit reached: refusing new connections").length, 1);
    assert.equal((await t.server.backend.stats()).users, 3);
    // One closes: room for one more, which, having no stream, is closed when idle.
    held[0]!.destroy();
    await eventually(() => t.server.connections === 2, "the closed connection still counts");
    const idle = await connectRawH2(t.port);
    clients.push(idle);
    await idle.closed;
    assert.ok(
      idle.frames.some((f) => f.type === FrameType.GOAWAY),
      "no GOAWAY before closing the idle connection",
    );
    assert.equal((await t.server.backend.stats()).users, 2);
  });

  it("keeps a deadline longer than a timer holds as no deadline, on both paths", async () => {
    for (const leanPath of [true, false]) {
      const t = await start({ leanPath });
      const c = await connectRawH2(t.port);
      clients.push(c);
      // 600 hours: more than 2^31 ms, which a timer would turn into 1 ms.
      c.request(1, grpcHeaders(connectPath, [["grpc-timeout", "600H"]]), connectBody(`patient-${leanPath}`));
      await eventually(async () => await t.server.backend.isOnline(`patient-${leanPath}`), "not connected");
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await t.server.backend.isOnline(`patient-${leanPath}`), true, `lean path ${leanPath}: the stream ended`);
      assert.ok(!c.frames.some((f) => f.type === FrameType.RST_STREAM || (f.type === FrameType.HEADERS && f.streamId === 1 && (f.flags & 1) === 1)));
    }
    // grpc-js, asking for 30 days.
    const t = await start({});
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const channel = new ChatService(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    const call = serverStream<unknown>(channel, "connect", { username: "month" }, new grpc.Metadata(), { deadline: Date.now() + 30 * 86_400_000 });
    let status: grpc.StatusObject | undefined;
    call.on("status", (s) => (status = s));
    call.on("error", () => {});
    call.on("data", () => {});
    await eventually(async () => await t.server.backend.isOnline("month"), "not connected");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(status, undefined, `ended with ${JSON.stringify(status)}`);
    call.cancel();
    channel.close();
  });

  it("ListChannels of 150,000 groups stays within what grpc-js accepts, a page at a time", async () => {
    const t = await start({ maxGroups: 200_000 });
    for (let u = 0; u < 150; u++) {
      await t.server.backend.connect(`owner${u}`);
      for (let g = 0; g < 1000; g++) await t.server.backend.createGroup(`owner${u}`, `group-${u}-${g}-${"q".repeat(16)}`);
    }
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    // grpc-js refuses a response over 4 MiB by default; all of these at once would be 5.4 MB.
    const channel = new ChatService(`127.0.0.1:${t.port}`, grpc.credentials.createInsecure());
    try {
      let pages = 0;
      let seen = 0;
      let pageToken = "";
      do {
        const page = await unary<{ channels: unknown[]; nextPageToken: string }>(channel, "listChannels", { pageToken }, as("owner0"));
        seen += page.channels.length;
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "" && pages < 200);
      assert.equal(seen, 150_150);
      assert.equal(pages, 151);
    } finally {
      channel.close();
    }
  });

  it("summarises a flood of failing calls in the log", async () => {
    const t = await start({ logBurst: 10 });
    const anonymous = createChatClient(t.baseUrl, "");
    for (let i = 0; i < 300; i++) await anonymous.listChannels({}).catch(() => {});
    await eventually(() => t.logs.some((l) => l.msg === "log lines suppressed"), "no summary line", 3000);
    assert.equal(t.logs.filter((l) => l.msg === "call failed").length, 10);
    const summary = t.logs.find((l) => l.msg === "log lines suppressed") as { suppressed: Record<string, number> };
    assert.equal(summary.suppressed["info: call failed"], 290);
  });

  it("on the web port: a stream cut off closes its socket, and slow headers are dropped", async () => {
    const t = await start({ queueLimit: 16, webHeadersTimeoutMs: 1000, webRequestTimeoutMs: 2000 });
    const webPort = Number(new URL(t.webUrl).port);
    // A Connect-protocol stream over HTTP/1.1 whose client stops reading.
    const body = Buffer.from(JSON.stringify({ username: "web-slow" }));
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    envelope.writeUInt32BE(body.length, 1);
    const req = http.request({ port: webPort, host: "127.0.0.1", method: "POST", path: connectPath, headers: { "content-type": "application/connect+json" } });
    const socketClosed = new Promise<void>((resolve) => req.on("socket", (s) => s.once("close", () => resolve())));
    req.on("error", () => {});
    let response: http.IncomingMessage | undefined;
    req.on("response", (res) => {
      response = res;
      res.pause();
    });
    req.end(envelope);
    await eventually(async () => await t.server.backend.isOnline("web-slow"), "not connected");
    const sender = createChatClient(t.baseUrl, "web-sender");
    const senderStream = await openStream(sender, "web-sender");
    // Enough to fill what the kernel buffers on loopback, then the queue of 16.
    for (let i = 0; i < 4000 && (await t.server.backend.isOnline("web-slow")); i++) {
      await sender.sendMessage({ channel: "web-slow", text: "w".repeat(4000) }).catch(() => {});
    }
    assert.equal(await t.server.backend.isOnline("web-slow"), false, "the stalled browser stream was not cut off");
    await eventually(() => t.logs.some((l) => l.msg === "session closed" && l.user === "web-slow"), "the stream did not end");
    // Reading again, the client finds the rest of what was sent, then the end
    // of the connection: the server closed its socket (a paused socket sees
    // no end).
    response!.resume();
    response!.on("error", () => {});
    await socketClosed;
    // Headers that never end are dropped once the headers timeout has passed.
    const slow = net.connect(webPort, "127.0.0.1");
    slow.on("error", () => {});
    slow.resume();
    slow.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    const started = Date.now();
    await new Promise<void>((resolve) => slow.once("close", () => resolve()));
    assert.ok(Date.now() - started < 5000, `held for ${Date.now() - started} ms`);
    senderStream.cancel();
    await stillChatting(t, "web");
  });
});
