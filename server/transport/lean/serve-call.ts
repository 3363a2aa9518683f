import * as http2 from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Compression, encodeEnvelope, envelopeCompress } from "@connectrpc/connect/protocol";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { resetStream } from "../reset-stream.js";
import { copyHeaders, invokeServerStream, invokeUnary } from "./connect-steps.js";
import { endResponse, responseHeaders, responseTrailers, sendHeaders } from "./grpc-response.js";
import type { LeanContext } from "./lean-context.js";
import type { LeanMethod, LeanSpec } from "./lean-method.js";
import { preEncodedFields } from "./pre-encoded.js";

/** One call on the lean path: what it needs from the request and the router. */
export interface LeanCall {
  method: LeanMethod;
  stream: http2.ServerHttp2Stream;
  headers: http2.IncomingHttpHeaders;
  /** The call's URL, as connect-node makes it. */
  url: string;
  timeoutMs: number | undefined;
  /** When the request's headers arrived: the deadline runs from then, as in Connect, not from the end of the body. */
  arrivedAt: number;
  compression: Compression | null;
  responseCompression: Compression | null;
  compressMinBytes: number;
  readMaxBytes: number;
  /** Told when a response could not be written (shared by every call). */
  hooks: { writeFailed?(method: string, error: unknown): void };
}

/** Why a call's signal aborts once its response is complete. */
const callEnded = new ConnectError("the call has ended", Code.Canceled);

/**
 * Runs a call whose request message has been read. Nothing a call does may
 * end the process: a response that cannot be written (the stream closed
 * under it) ends that stream alone.
 */
export function serveCall(call: LeanCall, context: LeanContext, input: MessageShape<DescMessage> | ConnectError): void {
  const spec = call.method.spec;
  if (spec.kind === "server_streaming") void serveServerStream(call, spec, context, input);
  else if (input instanceof ConnectError) serveError(call, context, input);
  else void serveUnary(call, spec, context, input);
}

/** Ends the stream of a call whose response could not be written, usually because its client left. */
function writeFailed(call: LeanCall, error: unknown): void {
  call.hooks.writeFailed?.(call.method.spec.method.name, error);
  resetStream(call.stream, http2.constants.NGHTTP2_INTERNAL_ERROR);
}

/**
 * What a call does once its response is complete, as Connect does: stops the
 * deadline timer, unlinks the shutdown signal, and tells anything still
 * listening that the call is over. Connect aborts without a reason, which
 * makes a DOMException with a stack trace on every call; a shared reason
 * costs nothing, and no handler can see the difference, since its call has
 * already ended.
 */
function endCall(context: LeanContext): void {
  context.abort(callEnded);
}

/**
 * Ends a call with the status of an error, as Connect's gRPC handler does: a
 * ConnectError keeps its code, message, details and (non-protocol) metadata;
 * anything else is INTERNAL with a generic message, so that no internal
 * detail reaches the client. Headers, then the status in trailers, as
 * Connect's adapter writes them.
 */
export function serveError(call: LeanCall, context: LeanContext, error: unknown, headersSent = false): void {
  // It never throws: it runs in catch blocks and rejection handlers, where a
  // throw would be an unhandled rejection. A status that cannot be written
  // (details that do not encode) resets the stream instead.
  try {
    context.abort(error);
    const stream = call.stream;
    if (stream.closed || stream.destroyed) return;
    const err = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    setTrailerStatus(context.responseTrailer, err);
    if (!headersSent) sendHeaders(stream, responseHeaders(context, call.responseCompression));
    endResponse(stream, responseTrailers(context));
  } catch (failure) {
    writeFailed(call, failure);
  }
}

/** Runs a unary call; it never rejects. */
async function serveUnary(call: LeanCall, spec: Extract<LeanSpec, { kind: "unary" }>, context: LeanContext, input: MessageShape<DescMessage>): Promise<void> {
  try {
    let body: Uint8Array;
    try {
      const output = await invokeUnary(spec, context, input, call.method.interceptors);
      const encoded = encode(call, output);
      body = encoded instanceof Promise ? await encoded : encoded;
    } catch (error) {
      serveError(call, context, error);
      return;
    }
    const stream = call.stream;
    if (stream.closed || stream.destroyed) return;
    sendHeaders(stream, responseHeaders(context, call.responseCompression));
    endResponse(stream, responseTrailers(context), body);
  } catch (failure) {
    writeFailed(call, failure);
  } finally {
    endCall(context);
  }
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
  input: MessageShape<DescMessage> | ConnectError,
): Promise<void> {
  const stream = call.stream;
  let headersSent = false;
  let it: AsyncIterator<unknown> | undefined;
  try {
    const { response, own } = await invokeServerStream(spec, context, input, call.method.interceptors);
    it = response.message[Symbol.asyncIterator]();
    for (;;) {
      const result = await it.next();
      if (result.done === true) break;
      const encoded = encode(call, result.value);
      const body = encoded instanceof Promise ? await encoded : encoded;
      if (stream.closed) break;
      if (!headersSent) {
        sendHeaders(stream, responseHeaders(context, call.responseCompression));
        headersSent = true;
      }
      if (!stream.write(body)) await drained(stream);
      if (stream.closed) break;
    }
    if (stream.closed) {
      // The client is gone: let the handler clean up, and write nothing more.
      await it.return?.();
      return;
    }
    // As Connect copies the trailer of an interceptor's own response once its messages are done.
    if (!own) copyHeaders(response.trailer, context.responseTrailer);
    if (!headersSent) sendHeaders(stream, responseHeaders(context, call.responseCompression));
    endResponse(stream, responseTrailers(context));
  } catch (error) {
    serveError(call, context, error, headersSent);
    // As Connect's pipeline does when serializing or writing fails: close the
    // handler's generator, so that its finally blocks run (a Watch releases
    // its subscription there). A generator that threw is already closed.
    it?.return?.().catch(() => {});
  } finally {
    endCall(context);
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

/**
 * Resolves once the stream can take more data, or once it has closed:
 * waiting for "drain" alone never ends on a stream destroyed with its
 * connection (see docs/upstream.md).
 */
function drained(stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    if (stream.closed) return resolve();
    stream.once("drain", done);
    stream.once("close", done);
  });
}
