import * as http2 from "node:http2";
import type { Logger } from "pino";
import { resetStream } from "./reset-stream.js";

/** The limits {@link createRequestBodyGuard} applies. */
export interface RequestBodyLimits {
  /** Bytes of request bodies not yet received in full that one connection may hold. */
  maxPendingBytes: number;
  /** Time a call has to send its whole request. */
  timeoutMs: number;
}

/** One request body being received, as its reader reports it to the guard. */
export interface BodyWatch {
  /** Counts bytes received; the guard resets the stream when they take its connection past the bound. */
  received(bytes: number): void;
  /** The body is complete, or its stream closed: its bytes no longer count. */
  done(): void;
}

/** Watches the bodies of single-message requests on HTTP/2. */
export interface RequestBodyGuard {
  /** Starts watching the body of a request on this stream. */
  watch(stream: http2.ServerHttp2Stream): BodyWatch;
  /**
   * Watches the body of a request read through node's compatibility API,
   * which reports its bytes as they go by.
   */
  watchRequest(req: http2.Http2ServerRequest): void;
}

/** A watched body: its stream, when it started, and the bytes it holds. */
interface Pending {
  stream: http2.ServerHttp2Stream;
  connection: { bytes: number };
  startedAt: number;
  held: number;
}

/**
 * Creates a guard for the bodies of single-message requests (unary and
 * server-streaming calls) on HTTP/2. Such a body is read in full before it is
 * parsed, so a client that starts many and finishes none (an envelope header
 * announcing 64 KiB, then part of it, on each of thousands of streams) would
 * make the server hold all of it for as long as it likes. The guard counts,
 * per connection, the bytes of bodies not yet complete, and resets the
 * stream that takes them past maxPendingBytes (ENHANCE_YOUR_CALM); a body not
 * complete within timeoutMs is reset too (CANCEL). One sweep, running only
 * while bodies are pending, finds the late ones, rather than a timer per
 * call: bodies are watched in the order they started, and all have the same
 * time, so the sweep stops at the first one still in time. A body is reset
 * between timeoutMs and timeoutMs plus a quarter of it (at most a second).
 */
export function createRequestBodyGuard(limits: RequestBodyLimits, logger: Logger): RequestBodyGuard {
  const byConnection = new WeakMap<http2.Http2Session, { bytes: number }>();
  // A Set keeps insertion order: the oldest body first.
  const pending = new Set<Pending>();
  const sweepEveryMs = Math.max(10, Math.min(1000, Math.floor(limits.timeoutMs / 4)));
  let sweeper: NodeJS.Timeout | undefined;

  const release = (body: Pending) => {
    if (!pending.delete(body)) return;
    body.connection.bytes -= body.held;
    body.held = 0;
  };
  const reset = (body: Pending, code: number, why: string) => {
    release(body);
    logger.info({ why }, "request reset");
    resetStream(body.stream, code);
  };
  const sweep = () => {
    const lateBefore = performance.now() - limits.timeoutMs;
    for (const body of pending) {
      if (body.startedAt > lateBefore) break;
      reset(body, http2.constants.NGHTTP2_CANCEL, `the request was not complete after ${limits.timeoutMs} ms`);
    }
    if (pending.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const watch = (stream: http2.ServerHttp2Stream): BodyWatch => {
    const session = stream.session;
    let connection = session === undefined ? undefined : byConnection.get(session);
    if (connection === undefined) {
      connection = { bytes: 0 };
      if (session !== undefined) byConnection.set(session, connection);
    }
    const body: Pending = { stream, connection, startedAt: performance.now(), held: 0 };
    pending.add(body);
    if (sweeper === undefined) {
      sweeper = setInterval(sweep, sweepEveryMs);
      sweeper.unref();
    }
    return {
      received(bytes) {
        if (!pending.has(body)) return;
        body.held += bytes;
        body.connection.bytes += bytes;
        if (body.connection.bytes > limits.maxPendingBytes) {
          reset(body, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `the connection's unfinished requests passed ${limits.maxPendingBytes} bytes`);
        }
      },
      done: () => release(body),
    };
  };
  return {
    watch,
    watchRequest(req) {
      const stream = req.stream;
      if (stream.readableEnded || stream.closed) return;
      // The compatibility layer's request starts reading its stream on its
      // first read, which may come after an await (a request gate checking a
      // signature). A "data" listener alone would set the stream flowing
      // before that, and every chunk it emitted meanwhile would reach this
      // guard and no reader. read(0) makes the request the stream's reader
      // now: it buffers the chunks (pausing the stream past its high-water
      // mark, so HTTP/2 flow control holds the client back) and the guard
      // watches them go by.
      req.read(0);
      const body = watch(stream);
      const onData = (chunk: Buffer) => body.received(chunk.length);
      const done = () => {
        body.done();
        stream.off("data", onData);
        stream.off("end", done);
        stream.off("close", done);
      };
      stream.on("data", onData);
      stream.once("end", done);
      stream.once("close", done);
    },
  };
}
