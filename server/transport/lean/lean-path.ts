import type * as http2 from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { type Compression, compressionNegotiate, envelopeDecompress, validateReadWriteMaxBytes } from "@connectrpc/connect/protocol";
import { headerAcceptEncoding, headerEncoding, parseTimeout } from "@connectrpc/connect/protocol-grpc";
import { longestTimerMs } from "../drop-timeouts-beyond-timers.js";
import type { RequestBodyGuard } from "../request-body-guard.js";
import { gateView } from "./connect-steps.js";
import { createLeanContext, type LeanContext } from "./lean-context.js";
import type { LeanMethod } from "./lean-method.js";
import { type Envelope, type RequestBody, readRequest } from "./read-request.js";
import { type LeanCall, serveCall, serveError } from "./serve-call.js";

/**
 * The lean path: serves a gRPC call straight from its HTTP/2 stream, or
 * declines it.
 */
export interface LeanPath {
  /**
   * Takes the call on this stream and answers it, whatever its body turns
   * out to be; or returns false, having read nothing and changed nothing,
   * for a request that Connect's own handler must answer.
   */
  take(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
}

/**
 * The router options that the lean path must apply exactly as Connect's
 * handler does, and what it needs from the server around it.
 */
export interface LeanPathOptions {
  acceptCompression: Compression[];
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
  /** Bounds the bodies of the calls it takes; none when undefined. */
  bodyGuard?: RequestBodyGuard;
  /** The context values of a call on this stream (how to close it, who sent it). */
  contextValues(stream: http2.ServerHttp2Stream, streaming: boolean): ContextValues;
  /** A call was taken by the lean path. */
  served?(): void;
  /** A response could not be written, usually because the client left. */
  writeFailed?(method: string, error: unknown): void;
}

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);

/**
 * Creates the lean path for the unary and server-streaming gRPC methods given
 * by request path.
 *
 * Connect's protocol handler runs every call, and every response of a stream,
 * through a pipeline of async iterables over node's compatibility request and
 * response objects. Profiled here, that was most of the server's work. This
 * path reads the request from the HTTP/2 stream and writes the frames of the
 * response to it, and keeps Connect's semantics everywhere else: the handler
 * context behaves as Connect's createHandlerContext (lean-context.ts), unary
 * calls go through Connect's invokeUnaryImplementation, compression is
 * negotiated by Connect's compressionNegotiate with the router's codecs and
 * thresholds, messages are (de)serialized by Connect's serializers, and
 * errors become trailers through Connect's setTrailerStatus, with Connect's
 * messages for bodies that are not one message. It takes an HTTP/2 POST of
 * the proto codec on a route it serves, without an Origin (browsers go
 * through the web guard) or an Expect, with a valid grpc-timeout if any
 * and an encoding the server supports: Connect answers anything else with
 * an error of its own, and the path declines it before reading a byte.
 *
 * These functions of @connectrpc/connect/protocol and protocol-grpc are marked
 * internal by Connect and follow no semver, which is why package.json pins
 * Connect's exact version; the parity test in test/e2e/lean-path-parity.test.ts
 * compares both paths call by call.
 */
export function createLeanPath(methods: ReadonlyMap<string, LeanMethod>, options: LeanPathOptions): LeanPath {
  const { readMaxBytes, compressMinBytes } = validateReadWriteMaxBytes(options.readMaxBytes, undefined, undefined);
  // Clients send the same few pairs of encoding headers on every call: each
  // pair is negotiated once (up to a bound, past which the rest are
  // negotiated per call, so that no client can grow the cache).
  const negotiated = new Map<string, ReturnType<typeof compressionNegotiate>>();
  const negotiate = (encoding: string | null, accept: string | null) => {
    // HTTP/2 header values hold neither NUL nor newline: no two pairs share a key.
    const key = `${encoding ?? "\0"}\n${accept ?? "\0"}`;
    let result = negotiated.get(key);
    if (result === undefined) {
      result = compressionNegotiate(options.acceptCompression, encoding, accept, headerAcceptEncoding);
      if (negotiated.size < 64) negotiated.set(key, result);
    }
    return result;
  };
  return {
    take(stream, headers) {
      // An Expect is answered by the stream listener as node's compatibility layer does (100 Continue, or 417).
      if (headers[":method"] !== "POST" || headers.origin !== undefined || headers.expect !== undefined) return false;
      const method = methods.get(String(headers[":path"]));
      if (method === undefined || !contentTypes.has(String(headers["content-type"]))) return false;
      const timeoutHeader = single(headers["grpc-timeout"]);
      const encodingHeader = single(headers["grpc-encoding"]);
      const acceptHeader = single(headers["grpc-accept-encoding"]);
      if (timeoutHeader === undefined || encodingHeader === undefined || acceptHeader === undefined) return false;
      // No maxTimeoutMs, as in Connect's router by default.
      const timeout = parseTimeout(timeoutHeader, Number.MAX_SAFE_INTEGER);
      const compression = negotiate(encodingHeader, acceptHeader);
      if (timeout.error !== undefined || compression.error !== undefined) return false;
      const url = urlOf(stream, headers);
      // Connect's path answers a request whose authority makes no URL.
      if (url === undefined) return false;
      // Taken. As drop-timeouts-beyond-timers.ts does for Connect's path: a
      // deadline too far for a timer is no deadline, and gone from the headers too.
      const timeoutMs = timeout.timeoutMs !== undefined && timeout.timeoutMs > longestTimerMs ? undefined : timeout.timeoutMs;
      if (timeoutMs !== timeout.timeoutMs) delete headers["grpc-timeout"];
      const call: LeanCall = {
        method,
        stream,
        headers,
        url,
        timeoutMs,
        arrivedAt: performance.now(),
        compression: compression.request,
        responseCompression: compression.response,
        compressMinBytes,
        readMaxBytes,
        hooks: options,
      };
      options.served?.();
      const values = options.contextValues(stream, method.spec.kind === "server_streaming");
      const watch = options.bodyGuard?.watch(stream);
      // As in Connect, the gate sees the call before its message is parsed,
      // and a refusal ends the call at once. The body is read meanwhile.
      if (method.requestGate === undefined) {
        readRequest(stream, readMaxBytes, watch, (body) => start(call, createContext(call, values, options.shutdownSignal), body));
        return true;
      }
      const context = createContext(call, values, options.shutdownSignal);
      // The body and the gate's verdict come in either order; the call starts once both are in.
      let body: RequestBody | undefined;
      let gate: "waiting" | "passed" | "refused" = "waiting";
      readRequest(stream, readMaxBytes, watch, (read) => {
        body = read;
        if (gate === "passed") start(call, context, read);
      });
      // Called now, as Connect does; a gate that throws refuses the call as one that rejects.
      new Promise<void>((resolve) => resolve(method.requestGate?.(gateView(context)))).then(
        () => {
          gate = "passed";
          if (body !== undefined) start(call, context, body);
        },
        (error: unknown) => {
          gate = "refused";
          serveError(call, context, error);
        },
      );
      return true;
    },
  };
}

/** Decodes the request and runs the call, or answers with the error its body earned. */
function start(call: LeanCall, context: LeanContext, body: RequestBody): void {
  const input = body instanceof ConnectError ? body : decodeRequest(call, body);
  if (input instanceof Promise) {
    input.then(
      (message) => run(call, context, message),
      (error: unknown) => serveError(call, context, error),
    );
  } else run(call, context, input);
}

/**
 * Runs the call. A body that was not one message is answered with its error
 * at once for a unary call, as Connect checks it before the interceptors; a
 * server stream's goes through them, as Connect's reads its body there.
 */
function run(call: LeanCall, context: LeanContext, input: Decoded): void {
  if (input instanceof ConnectError && call.method.spec.kind === "unary") serveError(call, context, input);
  else serveCall(call, context, input);
}

/**
 * The one request message, or Connect's error for a body that does not hold
 * exactly one that decompresses and parses. A promise only when it is
 * compressed: most requests need no turn of the event loop.
 */
function decodeRequest(call: LeanCall, envelopes: Envelope[]): Decoded | Promise<Decoded> {
  const kind = call.method.spec.kind === "unary" ? "unary" : "server-streaming";
  const [first, second] = envelopes;
  if (first === undefined) return new ConnectError(`protocol error: missing input message for ${kind} method`, Code.Unimplemented);
  const message = decodeMessage(call, first);
  const extra = second === undefined ? undefined : decodeMessage(call, second);
  if (message instanceof Promise || extra instanceof Promise) {
    return Promise.all([message, extra]).then(([m, e]) => onlyMessage(kind, m, e));
  }
  return onlyMessage(kind, message, extra);
}

/** A request message, or the error that stands for it. */
type Decoded = MessageShape<DescMessage> | ConnectError;

/** The request message when there is one, or the error Connect raises first: the first message's, the second's, or one too many. */
function onlyMessage(kind: string, message: Decoded, extra: Decoded | undefined): Decoded {
  if (message instanceof ConnectError) return message;
  if (extra instanceof ConnectError) return extra;
  if (extra !== undefined) return new ConnectError(`protocol error: received extra input message for ${kind} method`, Code.Unimplemented);
  return message;
}

/** One envelope's message, or the error Connect's decompression or parsing raises for it. */
function decodeMessage(call: LeanCall, envelope: Envelope): Decoded | Promise<Decoded> {
  const parse = (data: Uint8Array) => {
    try {
      return call.method.serialization.getI(true).parse(data);
    } catch (error) {
      return ConnectError.from(error);
    }
  };
  if ((envelope.flags & compressedFlag) === 0) return parse(envelope.data);
  return envelopeDecompress(envelope, call.compression, call.readMaxBytes).then(
    (decompressed) => parse(decompressed.data),
    (error: unknown) => ConnectError.from(error),
  );
}

/** The flag of a compressed gRPC envelope. */
const compressedFlag = 0b1;

/** A single header value; undefined for a header sent more than once, which Connect reads differently. */
function single(value: string | string[] | undefined): string | null | undefined {
  if (value === undefined) return null;
  return typeof value === "string" ? value : undefined;
}

function createContext(call: LeanCall, values: ContextValues, shutdownSignal: AbortSignal): LeanContext {
  const { stream, headers } = call;
  const context = createLeanContext({
    method: call.method.spec.method,
    url: call.url,
    timeoutMs: call.timeoutMs === undefined ? undefined : call.timeoutMs - (performance.now() - call.arrivedAt),
    shutdownSignal,
    requestHeader: headers,
    responseHeader: call.responseCompression === null ? plainResponseHeader : { ...plainResponseHeader, [headerEncoding]: call.responseCompression.name },
    responseTrailer: okTrailer,
    values,
  });
  // The call's signal aborts when the HTTP/2 stream closes while the call
  // runs, with the status that connect-node derives from the reset code (a
  // client's cancel is CANCELED). A stream that closes after its response is
  // the normal end of every call: nothing is left to tell.
  stream.on("close", context.streamClosed);
  return context;
}

/** The origins of the authorities calls came with, each worked out once (up to a bound, as for encodings). */
const origins = new Map<string, string>();

/**
 * A call's URL as connect-node makes it: new URL(path, scheme://authority),
 * the scheme https on a TLS connection, the authority from :authority or
 * else Host. Undefined when no URL can be made of them.
 */
function urlOf(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): string | undefined {
  const authority = headers[":authority"] ?? headers.host;
  if (authority === undefined) return undefined;
  const socket = stream.session?.socket;
  const base = `${socket !== undefined && "encrypted" in socket && socket.encrypted === true ? "https" : "http"}://${authority}`;
  let origin = origins.get(base);
  if (origin === undefined) {
    try {
      // The URL of the root, less its slash: what new URL(path, base) puts before a path.
      origin = new URL("/", base).href.slice(0, -1);
    } catch {
      return undefined;
    }
    if (origins.size < 64) origins.set(base, origin);
  }
  // The path is a route's (the call was matched on it): nothing in it for URL to change.
  return `${origin}${String(headers[":path"])}`;
}

/** What every response's headers and trailers start from; each context copies them into Headers of its own. */
const plainResponseHeader = { "content-type": "application/grpc+proto" };
const okTrailer = { "grpc-status": "0" };
