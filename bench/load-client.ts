import { createHmac } from "node:crypto";
import * as http2 from "node:http2";
import { createFrameReader, encodeFields, forEachField, frame, leadingNumber } from "./grpc-wire.js";
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

/** One simulated user: its own HTTP/2 connection and its Connect stream. */
export interface LoadUser {
  readonly username: string;
  /** Chat messages received so far (Connected is not counted). */
  readonly received: number;
  /** ConnectResponses received so far, Connected's included. */
  readonly responses: number;
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
 * Every received message's text must start with its send time in
 * microseconds; its latency goes to the recorder. onMessage runs after each
 * response with the user's running count.
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
          if (latencies !== undefined) {
            forEachField(buf, mFrom, mTo, (field, tFrom, tTo) => {
              if (field === 4) latencies.add(now - leadingNumber(buf, tFrom, tTo));
            });
          }
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

/** A text that starts with the current time in microseconds, padded to size bytes. */
export function timedText(size: number): string {
  const stamp = String(nowUs());
  return stamp.length >= size ? stamp : `${stamp} ${"x".repeat(size - stamp.length - 1)}`;
}
