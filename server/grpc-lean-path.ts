import type * as http2 from "node:http2";
import { create, fromBinary, isMessage, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import type { ServiceRegistration } from "./routes.js";

type LeanSpec = Extract<MethodImplSpec, { kind: "unary" | "server_streaming" }>;

/** A method the lean path can serve, with its interceptors. */
interface LeanMethod {
  spec: LeanSpec;
  interceptors: Interceptor[];
}

/** Called when the lean path hands a request back to Connect, with the body bytes it already read. */
export type Fallback = (consumed: Buffer[]) => void;

/**
 * Serves one request on the lean path, or hands it to the fallback.
 * Returns false, without touching the request, when the path does not apply.
 */
export type GrpcLeanPath = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  values: ContextValues,
  fallback: Fallback,
) => boolean;

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);

/**
 * Creates the lean path for unary and server-streaming gRPC calls.
 *
 * Connect's protocol handler runs every call, and every response of a stream,
 * through a pipeline of async iterables (compiled to generator helpers) and
 * abort signals. Profiled here, that machinery is most of the server's work:
 * about 650 µs of CPU per unary call and over 100 µs per streamed response,
 * where the write itself costs a few. This path serves the common case
 * directly: an HTTP/2 gRPC call, uncompressed, with no deadline, whose body
 * is exactly one message within readMaxBytes that decodes. It runs the very
 * same method implementations behind the very same interceptors, and writes
 * what Connect would write: headers, the messages, then grpc-status and
 * grpc-message in trailers. Anything else (compression, a deadline, a
 * malformed or oversized body, another protocol, a bidi stream) goes to
 * Connect's handler with the bytes read so far, so that every edge keeps
 * Connect's behaviour.
 *
 * The handler context's signal aborts when the server shuts down and, for a
 * stream, when the stream closes. A unary call's signal does not abort on a
 * client's cancel, unlike Connect's: no unary handler here reads it, as each
 * runs to completion synchronously.
 */
export function createGrpcLeanPath(
  services: readonly ServiceRegistration[],
  readMaxBytes: number,
  shutdownSignal: AbortSignal,
): GrpcLeanPath {
  const methods = new Map<string, LeanMethod>();
  for (const { spec, interceptors } of services) {
    for (const method of Object.values(spec.methods)) {
      if (method.kind === "unary" || method.kind === "server_streaming") {
        methods.set(`/${spec.service.typeName}/${method.method.name}`, { spec: method, interceptors });
      }
    }
  }

  return (req, res, values, fallback) => {
    const method = methods.get(req.url);
    const headers = req.headers;
    if (
      method === undefined ||
      req.method !== "POST" ||
      !contentTypes.has(String(headers["content-type"])) ||
      (headers["grpc-encoding"] !== undefined && headers["grpc-encoding"] !== "identity") ||
      headers["grpc-timeout"] !== undefined
    ) {
      return false;
    }
    readMessage(req, readMaxBytes, fallback, (bytes, chunks) => {
      let input;
      try {
        input = fromBinary(method.spec.method.input, bytes);
      } catch {
        fallback(chunks);
        return;
      }
      if (method.spec.kind === "unary") {
        serveUnary(method.spec, method.interceptors, req, res, values, shutdownSignal, input);
      } else {
        void serveServerStream(method.spec, method.interceptors, req, res, values, shutdownSignal, input);
      }
    });
    return true;
  };
}

/**
 * Reads a request body that must be exactly one uncompressed gRPC message of
 * at most readMaxBytes, and passes its bytes on; any other body goes to the
 * fallback with the chunks read.
 */
function readMessage(
  req: http2.Http2ServerRequest,
  readMaxBytes: number,
  fallback: Fallback,
  onMessage: (bytes: Uint8Array, chunks: Buffer[]) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = () => {
    req.off("data", onData);
    req.off("end", onEnd);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > readMaxBytes + 5) {
      // Too large for this path: Connect reads the rest and says why.
      stop();
      req.pause();
      fallback(chunks);
    }
  };
  const onEnd = () => {
    stop();
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
      fallback(chunks);
      return;
    }
    onMessage(body.subarray(5), chunks);
  };
  req.on("data", onData);
  req.on("end", onEnd);
}

function serveUnary(
  spec: Extract<LeanSpec, { kind: "unary" }>,
  interceptors: Interceptor[],
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  values: ContextValues,
  signal: AbortSignal,
  input: unknown,
): void {
  const ctx = handlerContext(spec, req, values, signal);
  const output = spec.method.output;
  // The request and response read their Headers through the context, so
  // that none is made unless something asks for it.
  const call = intercept<UnaryRequest, UnaryResponse>(interceptors, async (r) => {
    const result: unknown = await spec.impl(r.message as never, ctx);
    return new LeanUnaryResponse(ctx, isMessage(result, output) ? result : create(output, result as never)) as UnaryResponse;
  });
  const request = new LeanUnaryRequest(ctx, input);
  call(request as unknown as UnaryRequest).then(
    (response) => {
      res.writeHead(200, responseHeaders(ctx));
      res.addTrailers({ ...ctx.trailerEntries(), "grpc-status": "0" });
      res.end(frame(toBinary(output, response.message as never)));
    },
    (error: unknown) => endWithError(res, ctx, error, false),
  );
}

/** What a unary request and response share: the call they belong to, and a message. */
class LeanUnaryPart {
  readonly stream = false;
  constructor(
    protected readonly ctx: LeanContext,
    readonly message: unknown,
  ) {}
  get service() {
    return this.ctx.service;
  }
  get method() {
    return this.ctx.method;
  }
}

/**
 * A unary request whose header is read through the context, so that no
 * Headers object is made unless an interceptor asks for one.
 */
class LeanUnaryRequest extends LeanUnaryPart {
  readonly requestMethod = "POST";
  get url() {
    return this.ctx.url;
  }
  get signal() {
    return this.ctx.signal;
  }
  get contextValues() {
    return this.ctx.values;
  }
  get header() {
    return this.ctx.requestHeader;
  }
}

/** A unary response whose header and trailer live in the context, made on demand. */
class LeanUnaryResponse extends LeanUnaryPart {
  get header() {
    return this.ctx.responseHeader;
  }
  get trailer() {
    return this.ctx.responseTrailer;
  }
}

async function serveServerStream(
  spec: Extract<LeanSpec, { kind: "server_streaming" }>,
  interceptors: Interceptor[],
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  values: ContextValues,
  shutdownSignal: AbortSignal,
  input: unknown,
): Promise<void> {
  const stream = req.stream;
  const controller = new AbortController();
  const onShutdown = () => controller.abort(shutdownSignal.reason);
  const onClose = () => controller.abort(new ConnectError(`http/2 stream closed (0x${(stream.rstCode ?? 0).toString(16)})`, Code.Canceled));
  if (shutdownSignal.aborted) onShutdown();
  shutdownSignal.addEventListener("abort", onShutdown);
  stream.once("close", onClose);
  const ctx = handlerContext(spec, req, values, controller.signal);
  const output = spec.method.output;
  let headersSent = false;
  const sendHeaders = () => {
    if (!headersSent) {
      headersSent = true;
      res.writeHead(200, responseHeaders(ctx));
    }
  };
  let it: AsyncIterator<unknown> | undefined;
  try {
    const call = intercept<StreamRequest, StreamResponse>(interceptors, async (r) => ({
      stream: true,
      service: spec.method.parent,
      method: spec.method,
      header: ctx.responseHeader,
      trailer: ctx.responseTrailer,
      message: spec.impl(await single(r.message), ctx) as AsyncIterable<never>,
    }));
    const response = await call({
      stream: true,
      service: spec.method.parent,
      method: spec.method,
      requestMethod: "POST",
      url: ctx.url,
      signal: ctx.signal,
      header: ctx.requestHeader,
      contextValues: values,
      message: createAsyncIterable([input as never]),
    });
    it = (response.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    for (;;) {
      const next = await it.next();
      if (next.done === true) break;
      const message = isMessage(next.value, output) ? next.value : create(output, next.value as never);
      sendHeaders();
      if (stream.closed || !res.write(frame(toBinary(output, message)))) {
        await drained(res, stream);
      }
      if (stream.closed) {
        // The client is gone: let the handler clean up, and write nothing more.
        await it.return?.();
        return;
      }
    }
    sendHeaders();
    res.addTrailers({ ...ctx.trailerEntries(), "grpc-status": "0" });
    res.end();
  } catch (error) {
    if (!stream.closed) endWithError(res, ctx, error, headersSent);
  } finally {
    shutdownSignal.removeEventListener("abort", onShutdown);
    stream.off("close", onClose);
  }
}

/**
 * Resolves once the response can take more data, or once its stream has
 * closed: connect-node waits for "drain" alone, which never comes on a stream
 * destroyed with its connection.
 */
function drained(res: http2.Http2ServerResponse, stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    if (stream.closed) return resolve();
    res.once("drain", done);
    stream.once("close", done);
  });
}

function endWithError(res: http2.Http2ServerResponse, ctx: LeanContext, error: unknown, headersSent: boolean): void {
  const err = ConnectError.from(error);
  // Headers, then the status in trailers, as Connect sends it. (The compat API
  // cannot send a trailers-only response: it would end the stream with an
  // empty DATA frame, which grpc-js rejects.)
  if (!headersSent) res.writeHead(200, responseHeaders(ctx));
  res.addTrailers({
    ...ctx.trailerEntries(),
    ...Object.fromEntries(err.metadata),
    "grpc-status": String(err.code),
    "grpc-message": encodeURIComponent(err.rawMessage),
  });
  res.end();
}

/**
 * Wraps a call in interceptors the way Connect applies them: the first in the
 * list is the outermost.
 */
function intercept<Req, Res>(interceptors: Interceptor[], call: (req: Req) => Promise<Res>): (req: Req) => Promise<Res> {
  return interceptors.reduceRight((next, interceptor) => interceptor(next as never) as never, call);
}

async function single<T>(messages: AsyncIterable<T>): Promise<T> {
  for await (const message of messages) return message;
  throw new ConnectError("protocol error: missing input message", Code.Unimplemented);
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

function responseHeaders(ctx: LeanContext): Record<string, string> {
  const headers = ctx.responseHeaderIfAny;
  return headers === undefined ? { "content-type": "application/grpc+proto" } : { ...Object.fromEntries(headers), "content-type": "application/grpc+proto" };
}

function handlerContext(spec: LeanSpec, req: http2.Http2ServerRequest, values: ContextValues, signal: AbortSignal): LeanContext {
  return new LeanContext(spec, req, values, signal);
}

/**
 * A HandlerContext whose Headers objects are made only when asked for: most
 * calls read one request header (authorization) and set none.
 */
class LeanContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  private requestHeaders: Headers | undefined;
  responseHeaderIfAny: Headers | undefined;
  private responseTrailers: Headers | undefined;

  constructor(
    private readonly spec: LeanSpec,
    private readonly req: http2.Http2ServerRequest,
    readonly values: ContextValues,
    readonly signal: AbortSignal,
  ) {}

  get method() {
    return this.spec.method;
  }
  get service() {
    return this.spec.method.parent;
  }
  get url() {
    return `http://${this.req.authority}${this.req.url}`;
  }
  timeoutMs() {
    return undefined;
  }
  get requestHeader(): Headers {
    if (this.requestHeaders === undefined) {
      this.requestHeaders = new Headers();
      for (const [name, value] of Object.entries(this.req.headers)) {
        if (name.startsWith(":") || value === undefined) continue;
        this.requestHeaders.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
    }
    return this.requestHeaders;
  }
  get responseHeader(): Headers {
    return (this.responseHeaderIfAny ??= new Headers());
  }
  get responseTrailer(): Headers {
    return (this.responseTrailers ??= new Headers());
  }
  /** The trailers set by the handler, without making an empty Headers. */
  trailerEntries(): Record<string, string> {
    return this.responseTrailers === undefined ? {} : Object.fromEntries(this.responseTrailers);
  }
}
