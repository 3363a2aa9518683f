import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as http2 from "node:http2";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ConnectRequestSchema, ConnectResponseSchema, SendMessageRequestSchema, SendMessageResponseSchema } from "../../gen/chat/v1/chat_pb.js";
import { eventually } from "../helpers/eventually.js";
import { as, loadGrpcJsService, serverStream, unary } from "../helpers/grpc-js-client.js";
import { rawH2Call } from "../helpers/raw-h2-call.js";
import { connectRawH2, FrameType, grpcHeaders } from "../helpers/raw-h2-client.js";
import { startServerProcess } from "../helpers/server-process.js";
import { createTestCa, type TestCa } from "../helpers/test-ca.js";
import { startTestServer } from "../helpers/test-server.js";

// A gateway multiplexes its users over one connection, and each user who
// leaves cancels a stream with RST_STREAM (CANCEL). nghttp2 counts every
// RST_STREAM received and, by default, closes the connection past 1,000 at
// once and 33 a second: at 200 departures a second, every user of the
// gateway lost the connection after 6 s. The server now counts only streams
// the peer reset before they were answered (the rapid-reset attack), and
// keeps nghttp2's limit as a backstop far above a gateway's rates.

const connectPath = "/chat.v1.ChatService/Connect";
const sendPath = "/chat.v1.ChatService/SendMessage";
const connectRequest = (username: string) => toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username }));
const sendRequest = (channel: string, text: string) => toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel, text }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON of a ConnectResponse, as rawH2Call decodes it. */
interface EventsJson {
  events?: { connected?: unknown; message?: { text: string } }[];
}

/** A server in a process of its own, plain or with TLS: the test's clients do not share its CPU time. */
async function startServer(args: string[], ca?: TestCa) {
  const tlsArgs = ca === undefined ? [] : ["--tls-cert", ca.certFile, "--tls-key", ca.keyFile];
  const server = startServerProcess(["--port", "0", "--no-web", "--log-burst", "100000", ...tlsArgs, ...args]);
  const port = await server.listening;
  const baseUrl = `${ca === undefined ? "http" : "https"}://127.0.0.1:${port}`;
  return { ...server, port, baseUrl, ca, connect: () => http2.connect(baseUrl, ca === undefined ? {} : { ca: ca.ca }) };
}
type Server = Awaited<ReturnType<typeof startServer>>;

/** What test/helpers/rapid-reset-attacker.ts reports. */
interface AttackOutcome {
  streams: number;
  goawayMs?: number;
  closedMs?: number;
  goawayCode?: number;
  lastStreamId?: number;
}

/** What happened to one client connection: whether it got a GOAWAY or closed, and when. */
function watch(session: http2.ClientHttp2Session) {
  const started = performance.now();
  const seen: { goaway?: { code: number; atMs: number }; closedAtMs?: number } = {};
  session.on("error", () => {});
  session.on("goaway", (code) => (seen.goaway ??= { code, atMs: performance.now() - started }));
  session.on("close", () => (seen.closedAtMs = performance.now() - started));
  return seen;
}

/**
 * A user who stays: a Connect stream whose message texts are kept, with the
 * time each arrived.
 */
function stayingUser(session: http2.ClientHttp2Session, username: string) {
  const received: { text: string; atMs: number }[] = [];
  const stop = new AbortController();
  let ended = false;
  let connected!: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const done = rawH2Call(session, connectPath, connectRequest(username), ConnectResponseSchema, {
    signal: stop.signal,
    onMessage: (json) => {
      for (const event of (json as EventsJson).events ?? []) {
        if (event.connected !== undefined) connected();
        if (event.message !== undefined) received.push({ text: event.message.text, atMs: performance.now() });
      }
    },
  }).finally(() => (ended = true));
  return { received, ready, done, ended: () => ended, leave: () => stop.abort() };
}

/**
 * Users who come and go on one connection at `perSecond`: each opens its
 * Connect stream, waits for Connected and cancels it, as a gateway does when
 * its user leaves. Resolves with how many came, and how many of them did not
 * get their Connected.
 */
async function churn(session: http2.ClientHttp2Session, prefix: string, perSecond: number, durationMs: number) {
  const started = performance.now();
  const sessions: Promise<boolean>[] = [];
  while (performance.now() - started < durationMs && !session.closed && !session.destroyed) {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    while (sessions.length < due) {
      const call = rawH2Call(session, connectPath, connectRequest(`${prefix}-${sessions.length}`), ConnectResponseSchema, { cancelAfterMessages: 1 });
      sessions.push(call.then((t) => (t.messages[0]?.json as EventsJson | undefined)?.events?.[0]?.connected !== undefined));
    }
    await sleep(5);
  }
  const outcomes = await Promise.all(sessions);
  return { came: outcomes.length, notConnected: outcomes.filter((ok) => !ok).length };
}

/** Sends `count` messages to `to`, one every `everyMs`, on the given connection, as `from`; resolves with when each was sent. */
async function sendEvery(session: http2.ClientHttp2Session, from: string, to: string, count: number, everyMs: number, tag: string) {
  const sentAt = new Map<string, number>();
  for (let i = 0; i < count && !session.closed && !session.destroyed; i++) {
    const text = `${tag} ${i}`;
    sentAt.set(text, performance.now());
    void rawH2Call(session, sendPath, sendRequest(to, text), SendMessageResponseSchema, { headers: { authorization: from } });
    await sleep(everyMs);
  }
  return sentAt;
}

/** The gateway scenario on one server: a user who stays, a sender, and users coming and going at 200 a second. */
async function gatewayRun(server: Server, label: string, durationMs: number) {
  const session = server.connect();
  const seen = watch(session);
  const stable = stayingUser(session, `stable-${label}`);
  const sender = stayingUser(session, `sender-${label}`);
  await Promise.all([stable.ready, sender.ready]);
  const [comings, sentAt] = await Promise.all([
    churn(session, `passer-${label}`, 200, durationMs),
    sendEvery(session, `sender-${label}`, `stable-${label}`, Math.floor(durationMs / 100), 100, label),
  ]);
  // The last messages may still be on their way.
  await eventually(() => stable.received.length >= sentAt.size || stable.ended(), `${label}: ${stable.received.length} of ${sentAt.size} messages`, 10_000);
  const result = { seen: { ...seen }, comings, sent: [...sentAt.keys()], stable, sentAt, stableEnded: stable.ended() };
  stable.leave();
  sender.leave();
  session.close();
  return result;
}

describe("stream resets", { timeout: 240_000 }, () => {
  let ca: TestCa;
  before(() => {
    ca = createTestCa();
  });
  after(() => ca.remove());

  it("a gateway's users come and go at 200 a second for 60 s, on the plain and the TLS port at once: the connection stays, and a user who stays gets every message", async (t) => {
    const [plain, secure] = await Promise.all([startServer([]), startServer([], ca)]);
    try {
      const results = await Promise.all([gatewayRun(plain, "plain", 60_000), gatewayRun(secure, "tls", 60_000)]);
      for (const [label, r] of [
        ["plain", results[0]],
        ["tls", results[1]],
      ] as const) {
        // Before: nghttp2 sent GOAWAY (INTERNAL_ERROR) after 1,000 ÷ (200 − 33) = 6 s.
        assert.equal(r.seen.goaway, undefined, `${label}: the gateway's connection got a GOAWAY ${JSON.stringify(r.seen.goaway)}`);
        assert.equal(r.seen.closedAtMs, undefined, `${label}: the gateway's connection closed after ${r.seen.closedAtMs} ms`);
        assert.equal(r.stableEnded, false, `${label}: the staying user's stream ended`);
        assert.ok(r.comings.came >= 11_900, `${label}: only ${r.comings.came} users came and went`);
        assert.equal(r.comings.notConnected, 0, `${label}: ${r.comings.notConnected} users never got Connected`);
        assert.deepEqual(
          r.stable.received.map((m) => m.text),
          r.sent,
          `${label}: the staying user missed messages`,
        );
        const latencies = r.stable.received.map((m) => m.atMs - r.sentAt.get(m.text)!).sort((a, b) => a - b);
        t.diagnostic(
          `${label}: ${r.comings.came} users came and went in 60 s; the staying user got ${r.sent.length} of ${r.sent.length} messages, median ${latencies[latencies.length >> 1]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
        );
      }
      for (const server of [plain, secure]) {
        assert.ok(!server.logs.some((l) => String(l.msg).startsWith("connection dropped")), "the server dropped a connection");
        assert.equal(server.child.exitCode, null, "the server died");
      }
    } finally {
      await Promise.all([plain.stop(), secure.stop()]);
    }
  });

  it("a rapid-reset attacker (HEADERS then RST_STREAM at once, 5,000 a second) is cut off (GOAWAY) within 5 s, while users on other connections keep chatting, plain and TLS", async (t) => {
    for (const tls of [false, true]) {
      const label = tls ? "tls" : "plain";
      const server = await startServer([], tls ? ca : undefined);
      try {
        const aliceSession = server.connect();
        const bobSession = server.connect();
        watch(aliceSession);
        watch(bobSession);
        const alice = stayingUser(aliceSession, "alice");
        const bob = stayingUser(bobSession, "bob");
        await Promise.all([alice.ready, bob.ready]);
        // The attacker, in a process of its own.
        const script = fileURLToPath(new URL("../helpers/rapid-reset-attacker.ts", import.meta.url));
        const child = spawn(process.execPath, ["--import", "tsx", script, String(server.port), "5000", ...(tls ? [ca.caFile] : [])], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        const attack = new Promise<AttackOutcome>((resolve) => {
          createInterface({ input: child.stdout }).once("line", (line) => resolve(JSON.parse(line) as AttackOutcome));
        });
        // Alice writes to Bob every 20 ms during the attack, and a while after.
        const chat = attack.then(() => sleep(300));
        const sentAt = new Map<string, number>();
        for (let i = 0; ; i++) {
          const done = await Promise.race([chat.then(() => true), sleep(20).then(() => false)]);
          if (done) break;
          const text = `${label} ${i}`;
          sentAt.set(text, performance.now());
          void rawH2Call(aliceSession, sendPath, sendRequest("bob", text), SendMessageResponseSchema, { headers: { authorization: "alice" } });
        }
        const outcome = await attack;
        await eventually(() => bob.received.length >= sentAt.size, `${label}: bob got ${bob.received.length} of ${sentAt.size}`);
        // Cut off when the GOAWAY arrives: the server ignores what the
        // attacker sends after it, and closes the socket a second later.
        assert.equal(outcome.goawayCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `${label}: ${JSON.stringify(outcome)}`);
        assert.ok(outcome.goawayMs! < 5000, `${label}: cut off after ${outcome.goawayMs} ms`);
        assert.ok(outcome.closedMs! - outcome.goawayMs! < 3000, `${label}: the socket closed ${outcome.closedMs! - outcome.goawayMs!} ms after the GOAWAY`);
        await eventually(() => server.logs.some((l) => l.msg === "connection dropped: too many streams reset before they were answered"), "no log line");
        const line = server.logs.filter((l) => l.msg === "connection dropped: too many streams reset before they were answered");
        assert.equal(line.length, 1);
        assert.ok(Number(line[0]!.unanswered) > 200, `${label}: cut off after ${line[0]!.unanswered} unanswered streams`);
        assert.deepEqual(
          bob.received.map((m) => m.text),
          [...sentAt.keys()],
          `${label}: bob missed messages`,
        );
        const latencies = bob.received.map((m) => m.atMs - sentAt.get(m.text)!).sort((a, b) => a - b);
        t.diagnostic(
          `${label}: attacker cut off after ${outcome.goawayMs!.toFixed(0)} ms (GOAWAY; socket closed after ${outcome.closedMs!.toFixed(0)} ms; ${outcome.streams} streams sent, ${line[0]!.unanswered} counted by the server of ${line[0]!.opened} it had started, cut off after ${line[0]!.afterMs} ms); meanwhile ${sentAt.size} messages between two other users, median ${latencies[latencies.length >> 1]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
        );
        // Generous: the machine that runs the tests may be busy with more than this test.
        assert.ok(latencies.at(-1)! < 5000, `${label}: a message took ${latencies.at(-1)} ms`);
        assert.equal(alice.ended() || bob.ended(), false, `${label}: a user's stream ended`);
        alice.leave();
        bob.leave();
        aliceSession.close();
        bobSession.close();
        assert.equal(server.child.exitCode, null, "the server died");
      } finally {
        await server.stop();
      }
    }
  });

  it("counts the streams the peer resets before they are answered, not those the server resets, nor answered ones", async () => {
    const t = await startTestServer({ unansweredResetBurst: 20, unansweredResetRate: 1, requestBodyTimeoutMs: 300, maxPendingRequestBytes: 65536 });
    try {
      const session = http2.connect(t.baseUrl);
      const seen = watch(session);
      // 50 unary calls whose bodies never finish: the server resets them all
      // (ENHANCE_YOUR_CALM past the connection's 64 KiB, CANCEL after 300 ms).
      const partial = Buffer.alloc(60_005);
      partial.writeUInt32BE(65_000, 1);
      const codes = await Promise.all(
        Array.from({ length: 50 }, () => {
          const stream = session.request({ ":method": "POST", ":path": sendPath, "content-type": "application/grpc", te: "trailers", authorization: "x" });
          stream.on("error", () => {});
          stream.write(partial);
          return new Promise<number>((resolve) => stream.on("close", () => resolve(stream.rstCode ?? 0)));
        }),
      );
      assert.ok(
        codes.every((c) => c === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM || c === http2.constants.NGHTTP2_CANCEL),
        `other codes: ${[...new Set(codes)]}`,
      );
      // 50 users who leave once served.
      for (let i = 0; i < 50; i++) {
        const call = await rawH2Call(session, connectPath, connectRequest(`served-${i}`), ConnectResponseSchema, { cancelAfterMessages: 1 });
        assert.equal(call.rstCode, http2.constants.NGHTTP2_CANCEL);
      }
      await sleep(100);
      assert.equal(seen.goaway, undefined, "the server's own resets or served streams were counted");
      assert.equal(seen.closedAtMs, undefined);
      // Streams reset by their peer before any answer: past the burst of 20,
      // the connection is cut off. (Raw frames: node's client ends a stream's
      // body before it resets it, which the server answers at once.)
      const attacker = await connectRawH2(t.port);
      const cancel = Buffer.alloc(4);
      cancel.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
      for (let i = 0; i < 50; i++) {
        attacker.request(1 + 2 * i, grpcHeaders(connectPath), undefined, false);
        attacker.send(FrameType.RST_STREAM, 0, 1 + 2 * i, cancel);
      }
      await attacker.closed;
      const goaway = attacker.frames.find((f) => f.type === FrameType.GOAWAY);
      assert.equal(goaway?.payload.readUInt32BE(4), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // It names the last stream the server took (the 21st is stream 41), not 0, which would tell a
      // client that nothing it sent was processed.
      const lastStreamId = goaway.payload.readUInt32BE(0) & 0x7fffffff;
      assert.ok(lastStreamId >= 41 && lastStreamId <= 99, `last stream ${lastStreamId}`);
      await eventually(() => t.logs.some((l) => l.msg === "connection dropped: too many streams reset before they were answered"), "no log line");
      const line = t.logs.find((l) => l.msg === "connection dropped: too many streams reset before they were answered");
      assert.equal(line?.unanswered, 21, "cut off at the 21st unanswered stream");
      // The gateway's connection is still there, and served.
      assert.equal(seen.closedAtMs, undefined);
      const after = await rawH2Call(session, connectPath, connectRequest("after"), ConnectResponseSchema, { cancelAfterMessages: 1 });
      assert.equal(after.messages.length, 1);
      session.close();
    } finally {
      await t.stop();
    }
  });

  it("keeps nghttp2's count of every reset as a backstop, set by --stream-reset-burst and --stream-reset-rate", async () => {
    const t = await startTestServer({ streamResetBurst: 30, streamResetRate: 1 });
    try {
      const session = http2.connect(t.baseUrl);
      const seen = watch(session);
      // Served streams, cancelled: the project's guard ignores them, nghttp2 does not.
      for (let i = 0; i < 60 && !session.closed && seen.goaway === undefined; i++) {
        await rawH2Call(session, connectPath, connectRequest(`left-${i}`), ConnectResponseSchema, { cancelAfterMessages: 1 });
      }
      await eventually(() => seen.goaway !== undefined, "nghttp2 did not close the connection");
      assert.equal(seen.goaway?.code, http2.constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      await t.stop();
    }
  });

  it("through @grpc/grpc-js: one channel, users coming and going at 200 a second for 10 s, and the one who stays gets every message", async (t) => {
    const server = await startTestServer({});
    const ChatService = loadGrpcJsService("chat/v1/chat.proto", "chat.v1.ChatService");
    const channel = new ChatService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    type Events = { events: { connected?: unknown; message?: { text: string } }[] };
    try {
      const received: string[] = [];
      let stableStatus: grpc.StatusObject | undefined;
      const open = (username: string, onEvents: (res: Events) => void) => {
        const call = serverStream<Events>(channel, "connect", { username });
        call.on("data", onEvents);
        call.on("error", () => {});
        return call;
      };
      let ready = 0;
      const stable = open("gj-stable", (res) => {
        for (const e of res.events) {
          if (e.connected) ready++;
          if (e.message) received.push(e.message.text);
        }
      });
      stable.on("status", (s) => (stableStatus = s));
      const sender = open("gj-sender", (res) => {
        if (res.events.some((e) => e.connected)) ready++;
      });
      await eventually(() => ready === 2, "the staying users did not connect");
      const started = performance.now();
      let came = 0;
      let left = 0;
      const sent: string[] = [];
      const sendErrors: string[] = [];
      let nextSend = 0;
      while (performance.now() - started < 10_000 && stableStatus === undefined) {
        const elapsed = performance.now() - started;
        for (const due = Math.floor(elapsed / 5); came < due; came++) {
          const call = open(`gj-passer-${came}`, () => {
            call.cancel();
            left++;
          });
        }
        if (elapsed >= nextSend) {
          const text = `gj ${sent.length}`;
          sent.push(text);
          unary(channel, "sendMessage", { channel: "gj-stable", text }, as("gj-sender")).catch((err: unknown) => sendErrors.push(String(err)));
          nextSend += 100;
        }
        await sleep(5);
      }
      // Before: the staying user's stream ended after 6 s with "13 INTERNAL:
      // Received RST_STREAM with code 2 ... Session closed with error code 2".
      assert.equal(stableStatus, undefined, `the staying user's stream ended: ${JSON.stringify(stableStatus)}`);
      await eventually(() => received.length >= sent.length && left === came, `${received.length} of ${sent.length} messages; ${left} of ${came} left`, 10_000);
      assert.deepEqual(sendErrors, []);
      assert.deepEqual(received, sent);
      assert.ok(came >= 1990, `only ${came} users came`);
      assert.equal(server.server.connections, 1, "the channel needed another connection");
      assert.ok(!server.logs.some((l) => String(l.msg).startsWith("connection dropped")), "the server dropped a connection");
      t.diagnostic(`grpc-js: ${came} users came and went in 10 s on one channel; the staying user got ${received.length} of ${sent.length} messages`);
      stable.cancel();
      sender.cancel();
    } finally {
      channel.close();
      await server.stop();
    }
  });
});
