import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  CreateGroupChatRequestSchema,
  CreateGroupChatResponseSchema,
  JoinGroupChatRequestSchema,
  JoinGroupChatResponseSchema,
  LeaveGroupChatRequestSchema,
  LeaveGroupChatResponseSchema,
  ListChannelsRequestSchema,
  ListChannelsResponseSchema,
  ListMessagesRequestSchema,
  ListMessagesResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
} from "../../gen/chat/v1/chat_pb.js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { createMemoryBackend } from "../../server/core/memory-backend.js";
import { createChatMetrics } from "../../server/ops/chat-metrics.js";
import { createLogger } from "../../server/ops/logger.js";
import { createErrorInterceptor } from "../../server/rpc/error-interceptor.js";
import { createLogInterceptor } from "../../server/rpc/log-interceptor.js";
import { createCallHandlers } from "../../server/transport/call-handlers.js";
import { createStreamListener } from "../../server/transport/stream-listener.js";
import { type RawCallOptions, rawH2Call, type WireTranscript } from "../helpers/raw-h2-call.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

// The lean path must answer exactly as Connect's own handler does. Each table
// below runs twice, against a server with the lean path and one without, and
// the two wire transcripts (headers, trailers, decoded messages, reset codes)
// must be equal; the lean-path counter proves which path served each run.

/** Header variants every unary row runs under: plain, with a deadline, compressed both ways. */
const variants: Record<string, RawCallOptions> = {
  plain: {},
  deadline: { headers: { "grpc-timeout": "5S" } },
  gzip: { gzipRequest: true, headers: { "grpc-accept-encoding": "gzip" } },
};

interface Row {
  name: string;
  path: string;
  input: DescMessage;
  body: Record<string, unknown>;
  output: DescMessage;
  options?: RawCallOptions;
  /** Left open while the rows after it run; its transcript is taken at the end. */
  background?: boolean;
}

function row<I extends DescMessage>(name: string, path: string, input: I, body: MessageInitShape<I>, output: DescMessage, options?: RawCallOptions): Row {
  return { name, path, input, body: body as Record<string, unknown>, output, ...(options ? { options } : {}) };
}

function withVariant(options: RawCallOptions | undefined, variant: RawCallOptions): RawCallOptions {
  return { ...options, ...variant, headers: { ...options?.headers, ...variant.headers } };
}

/** Message ids and times are random or the clock's: compared for presence, not value. */
function normalize(transcript: WireTranscript): WireTranscript {
  return JSON.parse(
    JSON.stringify(transcript, (key, value: unknown) => {
      if (key === "id" && typeof value === "string" && value !== "") return "<id>";
      if (key === "sentAt" && typeof value === "string" && value !== "") return "<time>";
      return value;
    }),
  ) as WireTranscript;
}

/** A stream's events, flattened: how they were coalesced into responses depends on timing. */
function flattenEvents(transcript: WireTranscript): unknown {
  return {
    ...transcript,
    messages: transcript.messages.flatMap((m) => (m.json as { events?: unknown[] }).events ?? []),
  };
}

/** A stream left open while the rows after it run. */
interface OpenStreamRow {
  username: string;
  /** Resolves once a response carries this text. */
  saw(text: string): Promise<void>;
}

/**
 * Runs the rows in order on one connection and returns each one's transcript.
 * Background rows (Connect streams) stay open until `finish` has run: it gets
 * the open streams and whatever closes them (a shutdown, say).
 */
async function runRows(
  baseUrl: string,
  rows: readonly Row[],
  finish: (session: http2.ClientHttp2Session, open: OpenStreamRow[]) => Promise<void> = async () => {},
): Promise<Record<string, unknown>> {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const results: Record<string, unknown> = {};
  const background: Promise<void>[] = [];
  const open: OpenStreamRow[] = [];
  for (const r of rows) {
    const texts: string[] = [];
    const waiters: (() => void)[] = [];
    const onMessage = (json: unknown) => {
      texts.push(JSON.stringify(json));
      for (const wake of waiters.splice(0)) wake();
    };
    const saw = async (text: string) => {
      while (!texts.some((t) => t.includes(JSON.stringify(text)))) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    const options = r.background ? { ...r.options, onMessage } : r.options;
    const call = rawH2Call(session, r.path, toBinary(r.input, create(r.input, r.body as MessageInitShape<DescMessage>)), r.output, options).then((t) => {
      results[r.name] = r.output === ConnectResponseSchema ? flattenEvents(normalize(t)) : normalize(t);
    });
    if (r.background) {
      background.push(call);
      // Registered once its Connected event came: the next rows may use the name.
      await new Promise<void>((resolve) => waiters.push(resolve));
      open.push({ username: String(r.body.username), saw });
    } else {
      await call;
    }
  }
  await finish(session, open);
  await Promise.all(background);
  session.close();
  return results;
}

/**
 * Ends the open streams the way a server does: a marker message to each,
 * seen arriving (so every delivery before it is in the transcript), then a
 * shutdown, which ends them all with UNAVAILABLE.
 */
function markThenShutDown(t: TestServer) {
  return async (session: http2.ClientHttp2Session, open: OpenStreamRow[]) => {
    for (const stream of open) {
      const marker = `marker for ${stream.username}`;
      await rawH2Call(
        session,
        chat("SendMessage"),
        toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel: stream.username, text: marker })),
        SendMessageResponseSchema,
        as(stream.username),
      );
      await stream.saw(marker);
    }
    await t.stop();
  };
}

function statusesOf(results: Record<string, unknown>): Set<number> {
  return new Set(Object.values(results).map((t) => Number((t as WireTranscript).trailers["grpc-status"] ?? -1)));
}

const chat = (method: string) => `/chat.v1.ChatService/${method}`;
const as = (user: string, options?: RawCallOptions): RawCallOptions => ({ ...options, headers: { authorization: user, ...options?.headers } });

function chatRows(): Row[] {
  const rows: Row[] = [
    { ...row("connect alice", chat("Connect"), ConnectRequestSchema, { username: "alice" }, ConnectResponseSchema), background: true },
    {
      ...row("connect bob, deadline", chat("Connect"), ConnectRequestSchema, { username: "bob" }, ConnectResponseSchema, {
        headers: { "grpc-timeout": "60S" },
      }),
      background: true,
    },
    {
      ...row("connect carol, gzip", chat("Connect"), ConnectRequestSchema, { username: "carol" }, ConnectResponseSchema, {
        headers: { "grpc-accept-encoding": "gzip" },
      }),
      background: true,
    },
    row("connect alice again", chat("Connect"), ConnectRequestSchema, { username: "alice" }, ConnectResponseSchema),
    row("connect bad name", chat("Connect"), ConnectRequestSchema, { username: "bad name!" }, ConnectResponseSchema),
    row("connect dave past its deadline", chat("Connect"), ConnectRequestSchema, { username: "dave" }, ConnectResponseSchema, {
      headers: { "grpc-timeout": "300m" },
    }),
    row("connect erin, cancelled", chat("Connect"), ConnectRequestSchema, { username: "erin" }, ConnectResponseSchema, { cancelAfterMs: 100 }),
  ];
  for (const [v, variant] of Object.entries(variants)) {
    const add = (name: string, r: Omit<Row, "name">) => rows.push({ ...r, name: `${name} (${v})`, options: withVariant(r.options, variant) });
    add("create team", row("", chat("CreateGroupChat"), CreateGroupChatRequestSchema, { name: "team" }, CreateGroupChatResponseSchema, as("alice")));
    add("create a user's name", row("", chat("CreateGroupChat"), CreateGroupChatRequestSchema, { name: "alice" }, CreateGroupChatResponseSchema, as("bob")));
    add("create bad name", row("", chat("CreateGroupChat"), CreateGroupChatRequestSchema, { name: "bad name" }, CreateGroupChatResponseSchema, as("bob")));
    add("join team", row("", chat("JoinGroupChat"), JoinGroupChatRequestSchema, { name: "team" }, JoinGroupChatResponseSchema, as("bob")));
    add("join nowhere", row("", chat("JoinGroupChat"), JoinGroupChatRequestSchema, { name: "nowhere" }, JoinGroupChatResponseSchema, as("bob")));
    add("leave as non-member", row("", chat("LeaveGroupChat"), LeaveGroupChatRequestSchema, { name: "team" }, LeaveGroupChatResponseSchema, as("carol")));
    add("send as non-member", row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "team", text: "hi" }, SendMessageResponseSchema, as("carol")));
    add(
      "send to team",
      row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "team", text: `hello team ${v}` }, SendMessageResponseSchema, as("alice")),
    );
    add(
      "send a long direct message",
      row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "carol", text: `${v} `.repeat(700) }, SendMessageResponseSchema, as("bob")),
    );
    add("send anonymously", row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "team", text: "hi" }, SendMessageResponseSchema));
    add(
      "send as nobody online",
      row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "team", text: "hi" }, SendMessageResponseSchema, as("nobody")),
    );
    add("send empty text", row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "team", text: "" }, SendMessageResponseSchema, as("alice")));
    add("send to nobody", row("", chat("SendMessage"), SendMessageRequestSchema, { channel: "nobody", text: "hi" }, SendMessageResponseSchema, as("alice")));
    add("list", row("", chat("ListChannels"), ListChannelsRequestSchema, {}, ListChannelsResponseSchema, as("alice")));
    add("list anonymously", row("", chat("ListChannels"), ListChannelsRequestSchema, {}, ListChannelsResponseSchema));
    add("history", row("", chat("ListMessages"), ListMessagesRequestSchema, { channel: "team", pageSize: 2 }, ListMessagesResponseSchema, as("alice")));
    add(
      "history, foreign token",
      row("", chat("ListMessages"), ListMessagesRequestSchema, { channel: "team", pageToken: "x" }, ListMessagesResponseSchema, as("alice")),
    );
  }
  // Up to the group limit (40 in these servers), then one more.
  for (let i = 0; i < 41; i++) {
    rows.push(
      row(
        `create group ${i}`,
        chat("CreateGroupChat"),
        CreateGroupChatRequestSchema,
        { name: `g${String(i).padStart(2, "0")}-${"x".repeat(28)}` },
        CreateGroupChatResponseSchema,
        as("carol"),
      ),
    );
  }
  for (const [v, variant] of Object.entries(variants)) {
    rows.push(
      row(`list (${v}), large enough to compress`, chat("ListChannels"), ListChannelsRequestSchema, {}, ListChannelsResponseSchema, as("alice", variant)),
    );
  }
  return rows;
}

/** A gRPC frame: flags, length and data, with the length given or the data's own. */
function frameOf(data: Uint8Array, flags = 0, length = data.length): Buffer {
  const frame = Buffer.alloc(5 + data.length);
  frame[0] = flags;
  frame.writeUInt32BE(length, 1);
  frame.set(data, 5);
  return frame;
}

/** Bodies that are not one well-formed message, for a unary and a server-streaming method. */
function malformedBodyRows(): Row[] {
  const notProtobuf = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const send = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { channel: "alice", text: "hi" }));
  const connect = toBinary(ConnectRequestSchema, create(ConnectRequestSchema, { username: "zed" }));
  const bodies: [string, (valid: Uint8Array) => Uint8Array, Record<string, string>?][] = [
    ["no message", () => Buffer.alloc(0)],
    ["two messages", (valid) => Buffer.concat([frameOf(valid), frameOf(valid)])],
    ["a second message that does not parse", (valid) => Buffer.concat([frameOf(valid), frameOf(notProtobuf)])],
    ["cut short inside the header", (valid) => frameOf(valid).subarray(0, 3)],
    ["cut short inside the message", (valid) => frameOf(valid, 0, valid.length + 10)],
    ["larger than readMaxBytes", () => frameOf(Buffer.alloc(16), 0, 1_000_000)],
    ["not protobuf", () => frameOf(notProtobuf)],
    ["compressed without an encoding", (valid) => frameOf(valid, 1)],
    ["gzip that does not gunzip", (valid) => frameOf(valid, 1), { "grpc-encoding": "gzip" }],
  ];
  const rows: Row[] = [];
  for (const [what, body, headers] of bodies) {
    rows.push(
      row(`send: ${what}`, chat("SendMessage"), SendMessageRequestSchema, {}, SendMessageResponseSchema, {
        headers: { authorization: "alice", ...headers },
        rawBody: body(send),
      }),
      row(`connect: ${what}`, chat("Connect"), ConnectRequestSchema, {}, ConnectResponseSchema, { ...(headers ? { headers } : {}), rawBody: body(connect) }),
    );
  }
  return rows;
}

/**
 * Checks that the run with the lean path (the first) and the run without it
 * put the same calls on the wire with the same transcripts, and returns
 * Connect's.
 */
function sameOnBothPaths(transcripts: Record<string, unknown>[]): Record<string, unknown> {
  // Each test runs twice, lean path first, so there are exactly two transcripts.
  const [lean, connect] = transcripts as [Record<string, unknown>, Record<string, unknown>];
  for (const name of Object.keys(connect)) {
    assert.deepEqual(lean[name], connect[name], name);
  }
  assert.deepEqual(Object.keys(lean).sort(), Object.keys(connect).sort());
  return connect;
}

async function leanCalls(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^grpc_server_lean_path_calls_total (\d+)$/m.exec(text)?.[1]);
}

describe("the lean gRPC path answers exactly as Connect would", () => {
  const failures: unknown[] = [];
  const onFailure = (error: unknown) => failures.push(error);
  before(() => {
    process.on("unhandledRejection", onFailure);
    process.on("uncaughtException", onFailure);
  });
  after(() => {
    process.off("unhandledRejection", onFailure);
    process.off("uncaughtException", onFailure);
  });

  it("for every chat RPC, status, header, deadline and compression", async () => {
    const transcripts: Record<string, unknown>[] = [];
    for (const leanPath of [true, false]) {
      const t = await startTestServer({ leanPath, maxGroupsPerUser: 40, metricsPort: 0 });
      try {
        const rows = chatRows();
        let served = -1;
        transcripts.push(
          await runRows(t.baseUrl, rows, async (session, open) => {
            served = await leanCalls(t.server.metricsAddress!.port);
            await markThenShutDown(t)(session, open);
          }),
        );
        assert.equal(served, leanPath ? rows.length : 0, `lean path ${leanPath ? "on" : "off"}: calls it served`);
      } finally {
        await t.stop();
      }
    }
    const connect = sameOnBothPaths(transcripts);
    // The matrix really covers success and each code the chat answers with.
    const codes = [
      Code.InvalidArgument,
      Code.DeadlineExceeded,
      Code.NotFound,
      Code.AlreadyExists,
      Code.PermissionDenied,
      Code.ResourceExhausted,
      Code.FailedPrecondition,
      Code.Unavailable,
      Code.Unauthenticated,
    ];
    assert.deepEqual(
      [0, ...codes].filter((c) => !statusesOf(connect).has(c)),
      [],
    );
    // Compression was negotiated, both ways.
    const large = connect["list (gzip), large enough to compress"] as WireTranscript;
    assert.equal(large.headers["grpc-encoding"], "gzip");
    assert.equal(large.messages[0]?.compressed, true);
    assert.equal((connect["list (plain), large enough to compress"] as WireTranscript).messages[0]?.compressed, false);
    assert.equal(failures.length, 0, String(failures[0]));
  });

  it("for request bodies that are not exactly one message", async () => {
    const transcripts: Record<string, unknown>[] = [];
    for (const leanPath of [true, false]) {
      const t = await startTestServer({ leanPath, metricsPort: 0, readMaxBytes: 1024 });
      try {
        const rows = malformedBodyRows();
        transcripts.push(await runRows(t.baseUrl, rows));
        assert.equal(await leanCalls(t.server.metricsAddress!.port), leanPath ? rows.length : 0, `lean path ${leanPath ? "on" : "off"}: calls it served`);
      } finally {
        await t.stop();
      }
    }
    const connect = sameOnBothPaths(transcripts);
    // Each body earned an error of its own, not one shared failure.
    assert.deepEqual(
      [Code.InvalidArgument, Code.ResourceExhausted, Code.Unimplemented, Code.Internal].filter((c) => !statusesOf(connect).has(c)),
      [],
    );
    assert.equal(failures.length, 0, String(failures[0]));
  });

  it("resets a call whose status cannot be written, and the process goes on", async () => {
    // Connect's own handler leaves such a call without an answer; the lean
    // path must at least end it, and nothing may escape as an unhandled rejection.
    const server = await startHealthServer(true);
    const session = http2.connect(server.baseUrl);
    session.on("error", () => {});
    try {
      for (const method of ["Check", "Watch"]) {
        const request = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "bad-details" }));
        const t = await rawH2Call(session, health(method), request, HealthCheckResponseSchema);
        assert.equal(t.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, method);
      }
      const ok = await rawH2Call(
        session,
        health("Check"),
        toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "ok" })),
        HealthCheckResponseSchema,
      );
      assert.equal(ok.trailers["grpc-status"], "0");
      assert.equal(failures.length, 0, String(failures[0]));
    } finally {
      session.destroy();
      await server.close();
    }
  });

  it("for handlers that fail, misbehave, or outlive their client", async () => {
    const transcripts: Record<string, unknown>[] = [];
    for (const leanPath of [true, false]) {
      const server = await startHealthServer(leanPath);
      try {
        transcripts.push(await runRows(server.baseUrl, healthRows()));
        assert.equal(await server.leanCalls(), leanPath ? healthRows().length : 0);
      } finally {
        await server.close();
      }
    }
    const connect = sameOnBothPaths(transcripts);
    // What the rows are there for, as Connect answers them.
    const trailers = (name: string) => (connect[name] as WireTranscript).trailers;
    assert.equal(trailers("check details (plain)")["grpc-status"], String(Code.FailedPrecondition));
    assert.ok(trailers("check details (plain)")["grpc-status-details-bin"], "error details travel");
    assert.equal(trailers("check details (plain)")["x-reason"], "quota", "error metadata travels");
    assert.deepEqual(
      [trailers("check plain error (plain)")["grpc-status"], trailers("check plain error (plain)")["grpc-message"]],
      [String(Code.Internal), "internal%20error"],
    );
    assert.equal(trailers("check unencodable (plain)")["grpc-status"], String(Code.Internal));
    assert.equal((connect["check merged context (plain)"] as WireTranscript).headers["x-added"], "by-interceptor");
    assert.equal(
      (connect["check last cancel"] as WireTranscript).headers["x-last-cancel"],
      `${Code.Canceled} http/2 stream closed with error code CANCEL (0x8)`,
    );
    assert.equal((connect["watch unencodable (plain): did its finally run"] as WireTranscript).headers["x-finally-ran"], "true");
    assert.equal(trailers("check past its deadline")["grpc-status"], String(Code.DeadlineExceeded));
    assert.equal(trailers("watch past its deadline")["grpc-status"], String(Code.DeadlineExceeded));
    assert.equal(failures.length, 0, `a call's failure escaped: ${String(failures[0])}`);
  });
});

const health = (method: string) => `/grpc.health.v1.Health/${method}`;

function healthRows(): Row[] {
  const rows: Row[] = [];
  for (const [v, variant] of Object.entries(variants)) {
    for (const [name, service] of [
      ["ok", "ok"],
      ["details", "details"],
      ["plain error", "plain"],
      ["unencodable", "enum"],
      ["merged context", "merged"],
      ["cookies and a connection header", "cookies"],
    ]) {
      rows.push(row(`check ${name} (${v})`, health("Check"), HealthCheckRequestSchema, { service }, HealthCheckResponseSchema, variant));
      rows.push(row(`watch ${name} (${v})`, health("Watch"), HealthCheckRequestSchema, { service }, HealthCheckResponseSchema, variant));
      rows.push(
        row(`watch ${name} (${v}): did its finally run`, health("Check"), HealthCheckRequestSchema, { service: "last-finally" }, HealthCheckResponseSchema),
      );
    }
  }
  rows.push(row("check cancelled", health("Check"), HealthCheckRequestSchema, { service: "cancel" }, HealthCheckResponseSchema, { cancelAfterMs: 100 }));
  rows.push(row("check last cancel", health("Check"), HealthCheckRequestSchema, { service: "last-cancel" }, HealthCheckResponseSchema));
  rows.push(row("watch cancelled", health("Watch"), HealthCheckRequestSchema, { service: "cancel" }, HealthCheckResponseSchema, { cancelAfterMs: 100 }));
  rows.push(row("watch last cancel", health("Check"), HealthCheckRequestSchema, { service: "last-cancel" }, HealthCheckResponseSchema));
  const deadline = { headers: { "grpc-timeout": "200m" } };
  rows.push(row("check past its deadline", health("Check"), HealthCheckRequestSchema, { service: "deadline" }, HealthCheckResponseSchema, deadline));
  rows.push(row("watch past its deadline", health("Watch"), HealthCheckRequestSchema, { service: "deadline" }, HealthCheckResponseSchema, deadline));
  return rows;
}

const addedKey = createContextKey<string>("", { description: "set by the test interceptor" });

/**
 * Handlers that do what no chat handler should: fail with details and
 * metadata, throw plain errors, return what cannot be encoded, and keep
 * going after their client left.
 */
function misbehavingHealth(): ServiceImpl<typeof Health> {
  let lastCancel = "";
  let finallyRan = false;
  const details = () =>
    new ConnectError("refused with details", Code.FailedPrecondition, { "x-reason": "quota", "grpc-status": "0", "content-type": "text/html" }, [
      { desc: HealthCheckResponseSchema, value: { status: ServingStatus.SERVING } },
    ]);
  const aborted = (signal: AbortSignal) => new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve())));
  // An enum value that is not an int32, which the binary writer refuses.
  const unencodable = (2 ** 40) as ServingStatus;
  // The failures both methods share.
  const failIfAsked = (service: string) => {
    if (service === "details") throw details();
    if (service === "plain") throw new Error("internal detail: /etc/secret");
    // Details that cannot be encoded: the status itself cannot be written.
    if (service === "bad-details")
      throw new ConnectError("refused", Code.FailedPrecondition, undefined, [{ desc: HealthCheckResponseSchema, value: { status: unencodable } }]);
  };
  // Headers node would refuse or must keep apart: two cookies, and one HTTP/2 forbids.
  const oddHeaders = (header: Headers) => {
    header.append("set-cookie", "a=1");
    header.append("set-cookie", "b=2");
    header.set("connection", "close");
  };
  return {
    async check(req, ctx) {
      failIfAsked(req.service);
      switch (req.service) {
        case "enum":
          return { status: unencodable };
        case "cookies":
          oddHeaders(ctx.responseHeader);
          return { status: ServingStatus.SERVING };
        case "merged":
          ctx.responseHeader.set("x-added", ctx.requestHeader.get("x-added") ?? "missing");
          ctx.responseTrailer.set("x-value", ctx.values.get(addedKey));
          return { status: ServingStatus.SERVING };
        case "cancel":
          await aborted(ctx.signal);
          lastCancel = `${ConnectError.from(ctx.signal.reason).code} ${ConnectError.from(ctx.signal.reason).rawMessage}`;
          // Answers after its client left: the write must fail quietly.
          return { status: ServingStatus.SERVING };
        case "last-cancel":
          ctx.responseHeader.set("x-last-cancel", lastCancel);
          return { status: ServingStatus.SERVING };
        case "last-finally":
          ctx.responseHeader.set("x-finally-ran", String(finallyRan));
          finallyRan = false;
          return { status: ServingStatus.SERVING };
        case "deadline":
          ctx.responseHeader.set("x-timeout-set", String((ctx.timeoutMs() ?? 0) > 0));
          await aborted(ctx.signal);
          throw ctx.signal.reason;
        default:
          ctx.responseTrailer.set("x-trailer", "set by the handler");
          return { status: ServingStatus.SERVING };
      }
    },
    async *watch(req, ctx) {
      yield { status: ServingStatus.SERVING };
      failIfAsked(req.service);
      switch (req.service) {
        case "enum":
          try {
            yield { status: unencodable };
          } finally {
            // Runs only if the server closes the generator after the failed write.
            finallyRan = true;
          }
          return;
        case "merged":
          yield { status: ctx.requestHeader.get("x-added") === "by-interceptor" ? ServingStatus.SERVING : ServingStatus.UNKNOWN };
          return;
        case "cookies":
          // Headers went out with the first response: these land in the trailers.
          oddHeaders(ctx.responseTrailer);
          return;
        case "cancel":
          await aborted(ctx.signal);
          lastCancel = `${ConnectError.from(ctx.signal.reason).code} ${ConnectError.from(ctx.signal.reason).rawMessage}`;
          yield { status: ServingStatus.NOT_SERVING };
          return;
        case "deadline":
          await aborted(ctx.signal);
          throw ctx.signal.reason;
        default:
          ctx.responseTrailer.set("x-trailer", "set by the handler");
          yield { status: ServingStatus.NOT_SERVING };
      }
    },
  };
}

/** Adds a request header and a context value, so that handlers show what they were given. */
const mergingInterceptor: Interceptor = (next) => async (req) => {
  const header = new Headers(req.header);
  header.set("x-added", "by-interceptor");
  req.contextValues.set(addedKey, "from the interceptor");
  return next({ ...req, header });
};

async function startHealthServer(leanPath: boolean) {
  const logger = createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() }));
  const metrics = createChatMetrics(createMemoryBackend({ queueLimit: 10, maxGroupsPerUser: 10 }));
  const shutdown = new AbortController();
  const calls = createCallHandlers({
    routes: (router) => {
      router.service(Health, misbehavingHealth(), { interceptors: [createLogInterceptor(logger), createErrorInterceptor(), mergingInterceptor] });
    },
    shutdownSignal: shutdown.signal,
    readMaxBytes: 65536,
    leanPath,
    logger,
    metrics,
  });
  const server = http2.createServer().on("stream", createStreamListener(calls.lean, calls.request));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    leanCalls: async () => (await metrics.registry.getSingleMetric("grpc_server_lean_path_calls_total")?.get())?.values[0]?.value ?? 0,
    close: () => {
      shutdown.abort();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
