import * as http2 from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import {
  type Compression,
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  encodeEnvelope,
  envelopeCompress,
  envelopeDecompress,
  invokeUnaryImplementation,
  type MethodSerializationLookup,
  validateReadWriteMaxBytes,
} from "@connectrpc/connect/protocol";
import {
  contentTypeProto,
  grpcStatusOk,
  headerAcceptEncoding,
  headerContentType,
  headerEncoding,
  headerGrpcStatus,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { applyInterceptors, copyHeaders, firstMessage, mergeRequest, normalizeIterable } from "./connect-steps.js";
import { createLeanContext, type LeanContext } from "./lean-context.js";
import { preEncodedFields } from "./pre-encoded.js";
import { readEnvelope } from "./read-envelope.js";
import { errorFromResetCode } from "./reset-codes.js";
import { resetStream } from "./reset-stream.js";

type LeanSpec = Extract<MethodImplSpec, { kind: "unary" | "server_streaming" }>;

/** Connect's request gate (UniversalHandlerOptions.requestGate), which runs before a call's body is read. */
type RequestGate = (context: HandlerContext) => void | Promise<void>;

/** A method the lean path can serve: its implementation, interceptors and serializers. */
export interface LeanMethod {
  spec: LeanSpec;
  interceptors: Interceptor[];
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
  /** Connect's requestGate of the route: it runs before the request is decompressed or parsed. */
  requestGate: RequestGate | undefined;
}

/**
 * Prepares a method for the lean path, or returns undefined for the kinds
 * it does not serve (client and bidi streams).
 */
export function createLeanMethod(spec: MethodImplSpec, interceptors: Interceptor[], readMaxBytes: number, requestGate?: RequestGate): LeanMethod | undefined {
  if (spec.kind !== "unary" && spec.kind !== "server_streaming") return undefined;
  const limits = validateReadWriteMaxBytes(readMaxBytes, undefined, undefined);
  const serialization = createMethodSerializationLookup(spec.method, undefined, undefined, { readMaxBytes: limits.readMaxBytes, writeMaxBytes: 0xffffffff });
  return { spec, interceptors, serialization, requestGate };
}

/** Called when the lean path hands a request back to Connect, with the body bytes it already read. */
export type Fallback = (consumed: Buffer[]) => void;

/**
 * Serves one request for a method on the lean path, or hands it to the
 * fallback. Returns false, without touching the request, when the path does
 * not apply.
 */
export type GrpcLeanPath = (
  method: LeanMethod,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  values: ContextValues,
  fallback: Fallback,
) => boolean;

/**
 * The router options that the lean path must apply exactly as Connect's
 * handler does; the node handler gives both the same object.
 */
export interface LeanPathOptions {
  acceptCompression: Compression[];
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
}

/** What the lean path reports about each call it serves. */
export interface LeanPathHooks {
  /** A call was taken by the lean path (not handed back to Connect). */
  served?(): void;
  /** A response could not be written, usually because the client left. */
  writeFailed?(method: string, error: unknown): void;
}

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);

/**
 * Creates the lean path for unary and server-streaming gRPC calls.
 *
 * Connect's protocol handler runs every call, and every response of a stream,
 * through a pipeline of async iterables (compiled to generator helpers).
 * Profiled here, that pipeline was most of the server's work: about 650 µs of
 * CPU per unary call and over 100 µs per streamed response, where the write
 * itself costs a few. This path bypasses that pipeline and nothing else: the
 * handler context has the semantics of Connect's createHandlerContext
 * (lean-context.ts: the deadline, the shutdown and the request's end abort
 * it as in Connect), unary calls go through Connect's
 * invokeUnaryImplementation, compression is negotiated by Connect's
 * compressionNegotiate with the router's codecs and thresholds, messages are
 * (de)serialized by Connect's serializers, and errors become trailers through
 * Connect's setTrailerStatus, exactly as its gRPC handler does. What it takes:
 * an HTTP/2 gRPC call with the proto codec, a valid grpc-timeout if any, an
 * encoding the server supports, and a body of exactly one well-formed message
 * within readMaxBytes. Anything else goes to Connect's handler with the bytes
 * read so far, so that every edge keeps Connect's own answer.
 *
 * These functions of @connectrpc/connect/protocol and protocol-grpc are marked
 * internal by Connect and follow no semver, which is why package.json pins
 * Connect's minor version; the parity test in test/e2e/lean-path-parity.test.ts
 * compares both paths call by call.
 */
export function createGrpcLeanPath(options: LeanPathOptions, hooks: LeanPathHooks = {}): GrpcLeanPath {
  const { readMaxBytes, compressMinBytes } = validateReadWriteMaxBytes(options.readMaxBytes, undefined, undefined);
  return (method, req, res, values, fallback) => {
    const headers = req.headers;
    if (req.method !== "POST" || !contentTypes.has(String(headers["content-type"]))) {
      return false;
    }
    const timeoutHeader = single(headers["grpc-timeout"]);
    const encodingHeader = single(headers["grpc-encoding"]);
    const acceptHeader = single(headers["grpc-accept-encoding"]);
    if (timeoutHeader === undefined || encodingHeader === undefined || acceptHeader === undefined) {
      return false;
    }
    // No maxTimeoutMs, as in Connect's router by default (node-handler.ts
    // removes a deadline too long for a timer before this runs).
    const timeout = parseTimeout(timeoutHeader, Number.MAX_SAFE_INTEGER);
    const compression = compressionNegotiate(options.acceptCompression, encodingHeader, acceptHeader, headerAcceptEncoding);
    if (timeout.error !== undefined || compression.error !== undefined) {
      // Connect answers these with a status of its own: let it.
      return false;
    }
    const call: LeanCall = {
      method,
      req,
      res,
      values,
      timeoutMs: timeout.timeoutMs,
      arrivedAt: performance.now(),
      compression: compression.request,
      responseCompression: compression.response,
      compressMinBytes,
      shutdownSignal: options.shutdownSignal,
      hooks,
    };
    // Nothing a call does may end the process: a response that cannot be
    // written (the stream closed under it) ends that stream alone.
    const failed = (error: unknown) => {
      hooks.writeFailed?.(method.spec.method.name, error);
      resetStream(req.stream, http2.constants.NGHTTP2_INTERNAL_ERROR);
    };
    // As in Connect, the gate sees the call before its message is parsed, and
    // a refusal ends the call at once. The body is read meanwhile:
    // readEnvelope below reads the request from now on, gate or no gate.
    const gating = method.requestGate === undefined ? undefined : passGate(call, method.requestGate);
    const afterGate = (then: (gated: LeanContext | undefined) => void) => {
      if (gating === undefined) then(undefined);
      else
        gating.then((gated) => {
          if (gated !== false) then(gated);
        }, failed);
    };
    readEnvelope(
      req,
      readMaxBytes,
      (chunks) =>
        afterGate((gated) => {
          gated?.abort(callEnded);
          fallback(chunks);
        }),
      (flags, data, chunks) => afterGate((gated) => void serve(call, gated, flags, data, chunks, readMaxBytes, fallback).catch(failed)),
    );
    return true;
  };
}

/** One call on the lean path: what it needs from the request and the router. */
interface LeanCall {
  method: LeanMethod;
  req: http2.Http2ServerRequest;
  res: http2.Http2ServerResponse;
  values: ContextValues;
  timeoutMs: number | undefined;
  /** When the request's headers arrived: the deadline runs from then, as in Connect, not from the end of the body. */
  arrivedAt: number;
  compression: Compression | null;
  responseCompression: Compression | null;
  compressMinBytes: number;
  shutdownSignal: AbortSignal;
  hooks: LeanPathHooks;
}

/** A single header value; undefined for a header sent more than once, which Connect reads differently. */
function single(value: string | string[] | undefined): string | null | undefined {
  if (value === undefined) return null;
  return typeof value === "string" ? value : undefined;
}

/**
 * Decodes the request and runs the call. A body that does not decompress or
 * parse goes back to Connect, which answers it with its own status.
 */
async function serve(
  call: LeanCall,
  gated: LeanContext | undefined,
  flags: number,
  data: Uint8Array,
  chunks: Buffer[],
  readMaxBytes: number,
  fallback: Fallback,
): Promise<void> {
  let input: MessageShape<DescMessage>;
  try {
    // An uncompressed body is what envelopeDecompress would return as it is: no await for it.
    const body = (flags & compressedFlag) === 0 ? data : (await envelopeDecompress({ flags, data }, call.compression, readMaxBytes)).data;
    input = call.method.serialization.getI(true).parse(body);
  } catch {
    gated?.abort(callEnded);
    fallback(chunks);
    return;
  }
  call.hooks.served?.();
  const context = gated ?? createContext(call);
  try {
    if (call.method.spec.kind === "unary") {
      await serveUnary(call, call.method.spec, context, input);
    } else {
      await serveServerStream(call, call.method.spec, context, input);
    }
  } finally {
    // As Connect does once a response is complete: stops the deadline timer,
    // unlinks the shutdown and request signals, and tells anything still
    // listening that the call is over. Connect aborts without a reason, which
    // makes a DOMException with a stack trace on every call (8% of the CPU of
    // a direct message in the profile); a shared reason costs nothing, and no
    // handler can see the difference, since its call has already ended.
    context.abort(callEnded);
  }
}

/**
 * Runs the route's request gate on a new context: resolves with the context
 * when the gate lets the call through, or with false once a refused call has
 * been answered with the gate's error.
 */
async function passGate(call: LeanCall, gate: RequestGate): Promise<LeanContext | false> {
  const context = createContext(call);
  try {
    await gate(context);
    return context;
  } catch (error) {
    call.hooks.served?.();
    endWithError(call, context, error, false);
    context.abort(callEnded);
    return false;
  }
}

/** Why a call's signal aborts once its response is complete. */
const callEnded = new ConnectError("the call has ended", Code.Canceled);

function createContext(call: LeanCall): LeanContext {
  const { req } = call;
  const requestHeader: [string, string][] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (typeof value === "string") requestHeader.push([name, value]);
    else for (const v of value) requestHeader.push([name, v]);
  }
  const context = createLeanContext({
    method: call.method.spec.method,
    url: `http://${req.authority}${req.url}`,
    timeoutMs: call.timeoutMs === undefined ? undefined : call.timeoutMs - (performance.now() - call.arrivedAt),
    shutdownSignal: call.shutdownSignal,
    requestHeader,
    responseHeader: call.responseCompression === null ? plainResponseHeader : { ...plainResponseHeader, [headerEncoding]: call.responseCompression.name },
    responseTrailer: okTrailer,
    values: call.values,
  });
  // The call's signal aborts when the HTTP/2 stream closes while the call
  // runs, with the status that connect-node derives from the reset code (a
  // client's cancel is CANCELED). A stream that closes after its response is
  // the normal end of every call: nothing is left to tell.
  req.stream.once("close", () => {
    if (!context.signal.aborted) context.abort(errorFromResetCode(req.stream.rstCode));
  });
  return context;
}

/** What every response's headers and trailers start from; each context copies them into Headers of its own. */
const plainResponseHeader = { [headerContentType]: contentTypeProto };
const okTrailer = { [headerGrpcStatus]: grpcStatusOk };

async function serveUnary(call: LeanCall, spec: Extract<LeanSpec, { kind: "unary" }>, context: LeanContext, input: MessageShape<DescMessage>): Promise<void> {
  let body: Uint8Array;
  try {
    const output = await invokeUnaryImplementation(spec, context, input, call.method.interceptors);
    const encoded = encode(call, output);
    body = encoded instanceof Promise ? await encoded : encoded;
  } catch (error) {
    endWithError(call, context, error, false);
    return;
  }
  if (call.req.stream.closed) return;
  call.res.writeHead(200, nodeHeaders(context.responseHeader));
  call.res.addTrailers(nodeHeaders(context.responseTrailer));
  call.res.end(body);
}

/**
 * Runs a server-streaming call the way Connect's invokeStreamImplementation
 * does (interceptors around the implementation, headers and trailers copied
 * from what they return), writing each response as it comes with HTTP/2 flow
 * control honoured.
 */
// About 60 lines: one call's whole life, in the order Connect runs it; split, its state would travel between the parts.
async function serveServerStream(
  call: LeanCall,
  spec: Extract<LeanSpec, { kind: "server_streaming" }>,
  context: LeanContext,
  input: MessageShape<DescMessage>,
): Promise<void> {
  const { req, res } = call;
  const stream = req.stream;
  const output = spec.method.output;
  let headersSent = false;
  let it: AsyncIterator<unknown> | undefined;
  try {
    const next = applyInterceptors<StreamRequest, StreamResponse>(call.method.interceptors, async (request) => ({
      stream: true,
      service: spec.method.parent,
      method: spec.method,
      header: context.responseHeader,
      trailer: context.responseTrailer,
      message: normalizeIterable(output, spec.impl(await firstMessage(request.message), mergeRequest(context, request))),
    }));
    const response = await next({
      stream: true,
      service: spec.method.parent,
      method: spec.method,
      requestMethod: context.requestMethod,
      url: context.url,
      signal: context.signal,
      header: context.requestHeader,
      contextValues: context.values,
      message: createAsyncIterable([input]),
    });
    copyHeaders(response.header, context.responseHeader);
    it = response.message[Symbol.asyncIterator]();
    for (;;) {
      const result = await it.next();
      if (result.done === true) break;
      const encoded = encode(call, result.value);
      const body = encoded instanceof Promise ? await encoded : encoded;
      if (stream.closed) break;
      if (!headersSent) {
        res.writeHead(200, nodeHeaders(context.responseHeader));
        headersSent = true;
      }
      if (!res.write(body)) await drained(res, stream);
      if (stream.closed) break;
    }
    if (stream.closed) {
      // The client is gone: let the handler clean up, and write nothing more.
      await it.return?.();
      return;
    }
    copyHeaders(response.trailer, context.responseTrailer);
    if (!headersSent) res.writeHead(200, nodeHeaders(context.responseHeader));
    res.addTrailers(nodeHeaders(context.responseTrailer));
    res.end();
  } catch (error) {
    endWithError(call, context, error, headersSent);
    // As Connect's pipeline does when serializing or writing fails: close the
    // handler's generator, so that its finally blocks run (a Watch releases
    // its subscription there). A generator that threw is already closed.
    it?.return?.().catch(() => {});
  }
}

/**
 * Serializes, compresses when negotiated and large enough (as Connect's
 * envelopeCompress decides), and frames one message. A message that carries
 * its own encoding (pre-encoded.ts: most responses of a chat stream) is not
 * serialized: its fields are copied once into the frame. A promise only when
 * it compresses: most responses need no turn of the event loop.
 */
function encode(call: LeanCall, message: unknown): Uint8Array | Promise<Uint8Array> {
  const fields = preEncodedFields(message);
  if (fields !== undefined) {
    let size = 0;
    for (const field of fields) size += field.length;
    if (!compresses(call, size)) return frameOf(fields, size);
  }
  // The interceptors and the implementation produce messages of the method's
  // output type; Connect's serializer is typed for them.
  const data = call.method.serialization.getO(true).serialize(message as MessageShape<DescMessage>);
  if (!compresses(call, data.byteLength)) return encodeEnvelope(0, data);
  return envelopeCompress({ flags: 0, data }, call.responseCompression, call.compressMinBytes).then((envelope) =>
    encodeEnvelope(envelope.flags, envelope.data),
  );
}

/** Whether a response of this many bytes is compressed, by Connect's rule in envelopeCompress. */
function compresses(call: LeanCall, bytes: number): boolean {
  return call.responseCompression !== null && bytes >= call.compressMinBytes;
}

/** The uncompressed gRPC frame of a message's encoded fields, size bytes in all. */
function frameOf(fields: readonly Uint8Array[], size: number): Uint8Array {
  const frame = Buffer.allocUnsafe(5 + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  let at = 5;
  for (const field of fields) {
    frame.set(field, at);
    at += field.length;
  }
  return frame;
}

/** The flag of a compressed gRPC envelope. */
const compressedFlag = 0b1;

/**
 * Ends a call with the status of an error, as Connect's gRPC handler does: a
 * ConnectError keeps its code, message, details and (non-protocol) metadata;
 * anything else is INTERNAL with a generic message, so that no internal
 * detail reaches the client. Headers, then the status in trailers. (The compat
 * API cannot send a trailers-only response: it would end the stream with an
 * empty DATA frame, which grpc-js rejects.)
 */
function endWithError(call: LeanCall, context: LeanContext, error: unknown, headersSent: boolean): void {
  context.abort(error);
  if (call.req.stream.closed) return;
  const err = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
  setTrailerStatus(context.responseTrailer, err);
  if (!headersSent) call.res.writeHead(200, nodeHeaders(context.responseHeader));
  call.res.addTrailers(nodeHeaders(context.responseTrailer));
  call.res.end();
}

/**
 * Resolves once the response can take more data, or once its stream has
 * closed: waiting for "drain" alone never ends on a stream destroyed with its
 * connection (see docs/upstream.md).
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

/** Headers for node's http2 compat API; the values of a repeated name are joined, as fetch's Headers does. */
function nodeHeaders(headers: Headers): Record<string, string> {
  return Object.fromEntries(headers);
}
