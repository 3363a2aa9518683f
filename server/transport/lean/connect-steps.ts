import { create, type DescMessage, isMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Interceptor, type StreamRequest } from "@connectrpc/connect";

// Steps of Connect's server-side call handling that the package does not
// export, redone here for the lean path as Connect does them (the parity test
// compares the two paths call by call).

/** Wraps a call in interceptors as Connect's applyInterceptors does: the first in the list is the outermost. */
export function applyInterceptors<Req, Res>(interceptors: Interceptor[], call: (req: Req) => Promise<Res>): (req: Req) => Promise<Res> {
  // An Interceptor is typed over Connect's union of unary and stream calls;
  // the lean path only ever chains one kind, which the union cannot express.
  type AnyFn = Parameters<Interceptor>[0];
  return interceptors.reduceRight<AnyFn>((next, interceptor) => interceptor(next), call as unknown as AnyFn) as unknown as (req: Req) => Promise<Res>;
}

/** The context a handler sees: Connect's, with what the interceptors changed on the request (mergeRequest in Connect). */
export function mergeRequest(context: HandlerContext, request: StreamRequest): HandlerContext {
  return { ...context, service: request.service, requestHeader: request.header, signal: request.signal, values: request.contextValues };
}

/** Takes the one request message of a server-streaming call, with Connect's error when there is none. */
export async function firstMessage<T>(messages: AsyncIterable<T>): Promise<T> {
  for await (const message of messages) return message;
  throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
}

/**
 * Connect's normalizeIterable (protocol/normalize.ts, not exported): each
 * response built as a message of the output type, since implementations may
 * yield init shapes. A mapping iterator, not one more async generator.
 */
export function normalizeIterable<O extends DescMessage>(output: O, messages: AsyncIterable<MessageInitShape<O>>): AsyncIterable<MessageShape<O>> {
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
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => {
    to.set(key, value);
  });
}
