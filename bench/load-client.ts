import { createHmac } from "node:crypto";
import * as http2 from "node:http2";
import { createFrameReader, encodeFields, forEachField, frame } from "./grpc-wire.js";
import type { Access } from "./protocol.js";

/** Microseconds since the epoch, comparable across processes on one machine. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Collects latencies, in microseconds, without boxing them. */
export class LatencyRecorder {
  private values = new Float64Array(1 << 16);
  count = 0;

  add(us: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = us;
  }

  /** The recorded values, sorted. */
  sorted(): Float64Array {
    return this.values.slice(0, this.count).sort();
  }
}

/**
 * What one receiver heard from each sender: how many times each of the
 * sender's sequence numbers arrived. Sets, not order: with several calls in
 * flight a sender's messages may arrive out of order, and that is allowed.
 */
export class HeardLog {
  private readonly bySender = new Map<number, Uint8Array>();

  record(sender: number, seq: number): void {
    let counts = this.bySender.get(sender);
    if (counts === undefined || seq >= counts.length) {
      const grown = new Uint8Array(Math.max(1024, (seq + 1) * 2));
      if (counts !== undefined) grown.set(counts);
      counts = grown;
      this.bySender.set(sender, counts);
    }
    if (counts[seq]! < 255) counts[seq]!++;
  }

  /**
   * Compares what arrived with what was sent to this receiver (sender →
   * how many messages, numbered from 0): lost are numbers that never
   * arrived; duplicated are extra arrivals, and arrivals of anything never
   * sent to it.
   */
  check(sent: ReadonlyMap<number, number>): { lost: number; duplicated: number } {
    let lost = 0;
    let duplicated = 0;
    for (const [sender, counts] of this.bySender) {
      const count = sent.get(sender) ?? 0;
      for (let seq = 0; seq < counts.length; seq++) duplicated += seq < count ? Math.max(0, counts[seq]! - 1) : counts[seq]!;
    }
    for (const [sender, count] of sent) {
      const counts = this.bySender.get(sender);
      for (let seq = 0; seq < count; seq++) if (counts === undefined || seq >= counts.length || counts[seq] === 0) lost++;
    }
    return { lost, duplicated };
  }
}

/** One simulated user: its own HTTP/2 connection and its Connect stream. */
export interface LoadUser {
  readonly username: string;
  /** Chat messages received so far (Connected is not counted). */
  readonly received: number;
  /** ConnectResponses received so far, Connected's included. */
  readonly responses: number;
  /** Every message's sender and sequence number, from its text (see timedText). */
  readonly heard: HeardLog;
  /** Resolves once Connected has arrived. */
  readonly ready: Promise<void>;
  /** Resolves when the stream ends, with its gRPC status or RST code. */
  readonly ended: Promise<{ grpcStatus: number | undefined; rstCode: number }>;
  /** Calls a unary ChatService method with an encoded request; rejects on a non-OK status. */
  call(method: string, request: Uint8Array): Promise<void>;
  /** Stops reading the stream, as a client that hung would. */
  stall(): void;
  close(): void;
}

const pathPrefix = "/chat.v1.ChatService/";

/**
 * Connects a user on a new HTTP/2 connection and opens its Connect stream.
 * Every received message's text must be a timedText: its latency goes to the
 * recorder, its sender and sequence number to the user's HeardLog. onMessage
 * runs after each response with the user's running count.
 */
export function connectUser(url: string, username: string, latencies: LatencyRecorder | undefined, onMessage?: (user: LoadUser) => void): LoadUser {
  const session = http2.connect(url, { settings: { initialWindowSize: 1 << 20 }, ...(access.ca === undefined ? {} : { ca: access.ca }) });
  session.on("error", () => {});
  // A wide connection window too, as real gRPC clients set.
  session.on("connect", () => session.setLocalWindowSize(8 << 20));
  const stream = session.request({
    ":method": "POST",
    ":path": `${pathPrefix}Connect`,
    "content-type": "application/grpc+proto",
    te: "trailers",
    ...(access.jwtSecret === undefined ? {} : { authorization: credential(username) }),
  });
  let received = 0;
  let responses = 0;
  const heard = new HeardLog();
  let connected = false;
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  let grpcStatus: number | undefined;
  const user: LoadUser = {
    username,
    get received() {
      return received;
    },
    get responses() {
      return responses;
    },
    heard,
    ready,
    ended: new Promise((resolve) => {
      stream.on("close", () => resolve({ grpcStatus, rstCode: stream.rstCode ?? 0 }));
    }),
    call(method, request) {
      return unary(session, method, request, username);
    },
    stall() {
      stream.pause();
    },
    close() {
      session.destroy();
    },
  };
  const read = createFrameReader((buf, start, end) => {
    const now = nowUs();
    responses++;
    forEachField(buf, start, end, (no, from, to) => {
      if (no !== 1) return;
      // One Event: Connected (field 1) or ChatMessage (field 2).
      forEachField(buf, from, to, (kind, mFrom, mTo) => {
        if (kind === 1 && !connected) {
          connected = true;
          onReady();
        } else if (kind === 2) {
          received++;
          forEachField(buf, mFrom, mTo, (field, tFrom, tTo) => {
            if (field !== 4) return;
            readStamp(buf, tFrom, tTo);
            latencies?.add(now - stamp.us);
            heard.record(stamp.sender, stamp.seq);
          });
        }
      });
    });
    onMessage?.(user);
  });
  stream.on("data", read);
  stream.on("trailers", (t) => (grpcStatus = Number(t["grpc-status"])));
  stream.on("response", (h) => {
    if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
  });
  stream.on("error", () => {});
  stream.end(frame(encodeFields([[1, username]])));
  return user;
}

function unary(session: http2.ClientHttp2Session, method: string, request: Uint8Array, username: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": pathPrefix + method,
      "content-type": "application/grpc+proto",
      te: "trailers",
      authorization: credential(username),
    });
    let status: string | undefined;
    let message: string | undefined;
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        status = String(h["grpc-status"]);
        message = h["grpc-message"] as string | undefined;
      }
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("error", () => {});
    stream.resume();
    stream.on("close", () => {
      if (status === "0") resolve();
      else reject(new Error(`${method} as ${username}: grpc-status ${status ?? "none"} ${decodeURIComponent(message ?? "")} rst ${stream.rstCode}`));
    });
    stream.end(frame(request));
  });
}

let access: Access = {};
const tokens = new Map<string, string>();
let signed = 0;

/** Sets how users reach the server: over TLS trusting a CA, with signed tokens. */
export function setAccess(value: Access): void {
  access = value;
  tokens.clear();
}

/**
 * The authorization header of a user: its name, or a token signed for it
 * (HS256, valid for an hour), made once per user before the measured phase
 * needs it.
 */
function credential(username: string): string {
  if (access.jwtSecret === undefined) return username;
  let token = access.freshTokens === true ? undefined : tokens.get(username);
  if (token === undefined) {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: username, exp: Math.floor(Date.now() / 1000) + 3600, jti: ++signed })}`;
    token = `Bearer ${unsigned}.${createHmac("sha256", access.jwtSecret).update(unsigned).digest("base64url")}`;
    tokens.set(username, token);
  }
  return token;
}

/** Encodes a SendMessageRequest. */
export function sendMessageRequest(channel: string, text: string): Buffer {
  return encodeFields([
    [1, channel],
    [2, text],
  ]);
}

/** Encodes a request that carries only a name (create, join, leave). */
export function nameRequest(name: string): Buffer {
  return encodeFields([[1, name]]);
}

/**
 * A message text that says when it was sent and by whom: "<µs> <sender>:<seq>",
 * the current time in microseconds, the sender's number and the message's
 * sequence number from that sender, padded with x to size bytes.
 */
export function timedText(size: number, sender: number, seq: number): string {
  const head = `${nowUs()} ${sender}:${seq}`;
  return head.length >= size ? head : `${head} ${"x".repeat(size - head.length - 1)}`;
}

/** The fields of the last text readStamp read: one object, reused, so that reading allocates nothing. */
const stamp = { us: 0, sender: 0, seq: 0 };

/** Reads a timedText's head from buf[from, to) into stamp. */
function readStamp(buf: Uint8Array, from: number, to: number): void {
  let us = 0;
  let sender = 0;
  let seq = 0;
  let which = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) {
      if (++which === 3) break;
    } else if (which === 0) us = us * 10 + (c - 48);
    else if (which === 1) sender = sender * 10 + (c - 48);
    else seq = seq * 10 + (c - 48);
  }
  stamp.us = us;
  stamp.sender = sender;
  stamp.seq = seq;
}
