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

/**
 * Creates a guard for the bodies of single-message requests (unary and
 * server-streaming calls) on HTTP/2. Such a body is read in full before it is
 * parsed, so a client that starts many and finishes none (an envelope header
 * announcing 64 KiB, then part of it, on each of thousands of streams) would
 * make the server hold all of it for as long as it likes. The guard counts,
 * per connection, the bytes of bodies not yet complete, and resets the
 * stream that takes them past maxPendingBytes (ENHANCE_YOUR_CALM); a body not
 * complete within timeoutMs is reset too (CANCEL). Both paths, Connect's and
 * the lean one, read through the same request, so one guard covers them.
 */
export function createRequestBodyGuard(limits: RequestBodyLimits, logger: Logger): (req: http2.Http2ServerRequest) => void {
  const pending = new WeakMap<http2.Http2Session, { bytes: number }>();
  return (req) => {
    const stream = req.stream;
    const session = stream.session;
    if (session === undefined || stream.readableEnded) return;
    // The compatibility layer's request starts reading its stream on its
    // first read, which may come after an await (a request gate checking a
    // signature). A "data" listener alone would set the stream flowing
    // before that, and every chunk it emitted meanwhile would reach this
    // guard and no reader. read(0) makes the request the stream's reader
    // now: it buffers the chunks (pausing the stream past its high-water
    // mark, so HTTP/2 flow control holds the client back) and the guard
    // watches them go by.
    req.read(0);
    let budget = pending.get(session);
    if (budget === undefined) {
      budget = { bytes: 0 };
      pending.set(session, budget);
    }
    const connection = budget;
    let held = 0;
    const reset = (code: number, why: string) => {
      logger.info({ why }, "request reset");
      resetStream(stream, code);
      done();
    };
    const onData = (chunk: Buffer) => {
      held += chunk.length;
      connection.bytes += chunk.length;
      if (connection.bytes > limits.maxPendingBytes) {
        reset(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, `the connection's unfinished requests passed ${limits.maxPendingBytes} bytes`);
      }
    };
    const timer = setTimeout(() => reset(http2.constants.NGHTTP2_CANCEL, `the request was not complete after ${limits.timeoutMs} ms`), limits.timeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      connection.bytes -= held;
      held = 0;
      stream.off("data", onData);
      stream.off("end", done);
      stream.off("close", done);
    };
    stream.on("data", onData);
    stream.once("end", done);
    stream.once("close", done);
  };
}
