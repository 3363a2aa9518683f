import { create, type DescMessage, isMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type HandlerContext,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import type { LeanSpec } from "./lean-method.js";

// Steps of Connect's server-side call handling that the package does not
// export, redone here for the lean path as Connect does them (the parity test
// compares the two paths call by call). The requests, responses and contexts
// are written out in full rather than spread from the context as Connect
// does: for a unary call with their headers and signal behind getters, which
// a spread would read, building every Headers and the abort controller of a
// lean context (lean-context.ts) whether anything reads them or not; for a
// stream, which reads them anyway and keeps them while it is open, as plain
// properties.

/** Wraps a call in interceptors as Connect's applyInterceptors does: the first in the list is the outermost. */
function applyInterceptors<Req, Res>(interceptors: Interceptor[], call: (req: Req) => Promise<Res>): (req: Req) => Promise<Res> {
  // An Interceptor is typed over Connect's union of unary and stream calls;
  // the lean path only ever chains one kind, which the union cannot express.
  type AnyFn = Parameters<Interceptor>[0];
  return interceptors.reduceRight<AnyFn>((next, interceptor) => interceptor(next), call as unknown as AnyFn) as unknown as (req: Req) => Promise<Res>;
}

/**
 * The context a handler sees: Connect's, with what the interceptors changed
 * on the request (mergeRequest in Connect), for a server stream, whose
 * handler reads its headers and signal anyway, and which keeps it as long as
 * the stream is open: plain properties, in V8's fast mode (an object literal
 * with getters is kept in dictionary mode, several hundred bytes more).
 */
function mergeRequest(context: HandlerContext, request: StreamRequest): HandlerContext {
  return {
    service: request.service,
    method: context.method,
    protocolName: context.protocolName,
    requestMethod: context.requestMethod,
    url: context.url,
    timeoutMs: context.timeoutMs,
    signal: request.signal,
    values: request.contextValues,
    requestHeader: request.header,
    responseHeader: context.responseHeader,
    responseTrailer: context.responseTrailer,
  };
}

/**
 * The context as a request gate sees it: Connect hands its gate the
 * handler context itself, a plain object; the lean context is a class whose
 * lazy parts a spread would not copy. Own getters here, as in
 * mergeRequestLazily.
 */
export function gateView(context: HandlerContext): HandlerContext {
  return {
    service: context.service,
    method: context.method,
    protocolName: context.protocolName,
    requestMethod: context.requestMethod,
    url: context.url,
    timeoutMs: context.timeoutMs,
    values: context.values,
    get signal() {
      return context.signal;
    },
    get requestHeader() {
      return context.requestHeader;
    },
    get responseHeader() {
      return context.responseHeader;
    },
    get responseTrailer() {
      return context.responseTrailer;
    },
  };
}

/**
 * The same for a unary call, with its headers and signal behind getters, so
 * that the context's lazy Headers and abort controller are made only if the
 * handler reads them; a unary call's context does not outlive it.
 */
function mergeRequestLazily(context: HandlerContext, request: UnaryRequest): HandlerContext {
  return {
    service: request.service,
    method: context.method,
    protocolName: context.protocolName,
    requestMethod: context.requestMethod,
    url: context.url,
    timeoutMs: context.timeoutMs,
    values: request.contextValues,
    get signal() {
      return request.signal;
    },
    get requestHeader() {
      return request.header;
    },
    get responseHeader() {
      return context.responseHeader;
    },
    get responseTrailer() {
      return context.responseTrailer;
    },
  };
}

/**
 * Runs a unary call through its interceptors as Connect's
 * invokeUnaryImplementation does, and returns the response message. The
 * headers an interceptor's own response carries are copied to the context as
 * Connect copies them; the response the call itself made already holds the
 * context's.
 */
export async function invokeUnary(
  spec: Extract<LeanSpec, { kind: "unary" }>,
  context: HandlerContext,
  input: MessageShape<DescMessage>,
  interceptors: Interceptor[],
): Promise<MessageShape<DescMessage>> {
  let own: UnaryResponse | undefined;
  const next = applyInterceptors<UnaryRequest, UnaryResponse>(interceptors, async (req) => {
    own = {
      stream: false,
      service: spec.method.parent,
      method: spec.method,
      message: create(spec.method.output, await spec.impl(req.message, mergeRequestLazily(context, req))),
      get header() {
        return context.responseHeader;
      },
      get trailer() {
        return context.responseTrailer;
      },
    };
    return own;
  });
  const res = await next({
    stream: false,
    service: spec.method.parent,
    method: spec.method,
    message: input,
    requestMethod: context.requestMethod,
    url: context.url,
    contextValues: context.values,
    get signal() {
      return context.signal;
    },
    get header() {
      return context.requestHeader;
    },
  });
  if (res !== own) {
    copyHeaders(res.header, context.responseHeader);
    copyHeaders(res.trailer, context.responseTrailer);
  }
  return res.message;
}

/**
 * Runs a server-streaming call through its interceptors as Connect's
 * invokeStreamImplementation does, and returns the response, with whether it
 * is the one the call itself made (which holds the context's headers) or an
 * interceptor's own, whose header has been copied to the context and whose
 * trailer the caller copies once the messages are done, as Connect does.
 */
export async function invokeServerStream(
  spec: Extract<LeanSpec, { kind: "server_streaming" }>,
  context: HandlerContext,
  input: MessageShape<DescMessage> | ConnectError,
  interceptors: Interceptor[],
): Promise<{ response: StreamResponse; own: boolean }> {
  let own: StreamResponse | undefined;
  const next = applyInterceptors<StreamRequest, StreamResponse>(interceptors, async (req) => {
    own = {
      stream: true,
      service: spec.method.parent,
      method: spec.method,
      message: normalizeIterable(spec.method.output, spec.impl(await firstMessage(req.message), mergeRequest(context, req))),
      header: context.responseHeader,
      trailer: context.responseTrailer,
    };
    return own;
  });
  const res = await next({
    stream: true,
    service: spec.method.parent,
    method: spec.method,
    message: single(input),
    requestMethod: context.requestMethod,
    url: context.url,
    contextValues: context.values,
    signal: context.signal,
    header: context.requestHeader,
  });
  if (res !== own) copyHeaders(res.header, context.responseHeader);
  return { response: res, own: res === own };
}

/**
 * An async iterable of one message, as Connect's createAsyncIterable([message])
 * gives, without an async generator; or, for a body that was not one
 * message, one that fails with its error, as Connect's body pipeline does
 * when the handler reads it: inside the interceptors, which count and log it.
 */
function single<T>(message: T | ConnectError): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      let taken = false;
      return {
        next: () => {
          if (message instanceof ConnectError) return Promise.reject(message);
          if (taken) return Promise.resolve({ done: true, value: undefined });
          taken = true;
          return Promise.resolve({ done: false, value: message });
        },
      };
    },
  };
}

/**
 * The one request message of a server-streaming call, as Connect's
 * ensureSingle (invoke-implementation.ts) takes it, with its errors when
 * there is none or more than one (an interceptor may have replaced the
 * request's messages).
 */
async function firstMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  const second = await it.next();
  if (second.done !== true) throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
  return first.value;
}

/**
 * Connect's normalizeIterable (protocol/normalize.ts, not exported): each
 * response built as a message of the output type, since implementations may
 * yield init shapes. A mapping iterator, not one more async generator.
 */
function normalizeIterable<O extends DescMessage>(output: O, messages: AsyncIterable<MessageInitShape<O>>): AsyncIterable<MessageShape<O>> {
  const normalize = (result: IteratorResult<MessageInitShape<O>>): IteratorResult<MessageShape<O>> =>
    result.done === true ? result : { done: false, value: isMessage(result.value, output) ? result.value : create(output, result.value) };
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      return {
        next: () => it.next().then(normalize),
        return: (value?: unknown) => (it.return ? it.return(value).then(normalize) : Promise.resolve({ done: true as const, value: undefined })),
        throw: (error?: unknown) => (it.throw ? it.throw(error).then(normalize) : Promise.reject(error)),
      };
    },
  };
}

export function copyHeaders(from: Headers, to: Headers): void {
  if (from === to) return;
  // Exactly as Connect's copyHeaders (invoke-implementation.ts), deletion
  // while iterating included, which leaves some of the old names behind: the
  // parity test compares what goes on the wire.
  to.forEach((_, key) => {
    to.delete(key);
  });
  from.forEach((value, key) => {
    to.set(key, value);
  });
}
