import type * as http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { createLazyHeaders, type LazyHeaders } from "./lazy-headers.js";

/** What a lean call's context is made from. */
export interface LeanContextInit {
  method: DescMethod;
  url: string;
  /** Milliseconds left before the call's deadline, if it has one. */
  timeoutMs: number | undefined;
  shutdownSignal: AbortSignal;
  /** The request's headers as node gives them; pseudo-headers are left out. */
  requestHeader: http2.IncomingHttpHeaders;
  responseHeader: Record<string, string>;
  responseTrailer: Record<string, string>;
  values: ContextValues;
}

/** A handler context, and how the lean path ends it. */
export type LeanContext = HandlerContext & {
  /** Aborts the call's signal with reason, as Connect's context controller does, and stops its deadline. */
  abort(reason?: unknown): void;
  /**
   * The response headers and trailers if anything has changed (or iterated)
   * them; undefined while they are still what the call started with.
   */
  touched(): { header: Headers | undefined; trailer: Headers | undefined };
};

/**
 * Creates a gRPC call's handler context with the semantics of Connect's
 * createHandlerContext, for the lean path. Connect links three signals into
 * the call's (a deadline signal, the request's and the server's shutdown), so
 * every call makes three AbortControllers and four listeners. Here one
 * controller does, made when the signal is first read: the deadline is a
 * timer that aborts it, the lean path aborts it itself when the request's
 * stream closes, and the shutdown signal gets one listener, removed when the
 * call ends. The reasons are Connect's:
 * DEADLINE_EXCEEDED "the operation timed out", the shutdown signal's reason,
 * or the reason given to abort(). The three Headers read from records until
 * something changes them (lazy-headers.ts), as most calls read one header of
 * the request and change none of the response's: building them costs more
 * than the rest of the context.
 */
export function createLeanContext(init: LeanContextInit): LeanContext {
  const shutdown = init.shutdownSignal;
  const deadlineAt = init.timeoutMs === undefined ? undefined : performance.now() + init.timeoutMs;
  // The controller is made when the signal is first read: a unary call whose
  // handler and interceptors never read it (most of them) pays for no
  // controller, no shutdown listener, no deadline timer and no abort event.
  // Until then, an abort is only remembered, and the signal comes out
  // already aborted with that reason, as it would have been.
  let controller: AbortController | undefined;
  let endedWith: { reason: unknown } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const abort = (reason?: unknown) => {
    if (controller === undefined) {
      endedWith ??= { reason };
      return;
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    shutdown.removeEventListener("abort", onShutdown);
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onShutdown = () => abort(shutdown.reason);
  const signal = (): AbortSignal => {
    if (controller !== undefined) return controller.signal;
    controller = new AbortController();
    const left = deadlineAt === undefined ? undefined : deadlineAt - performance.now();
    if (endedWith !== undefined) abort(endedWith.reason);
    else if (left !== undefined && left <= 0) abort(timedOut());
    else if (shutdown.aborted) abort(shutdown.reason);
    else {
      if (left !== undefined) timer = setTimeout(() => abort(timedOut()), left);
      shutdown.addEventListener("abort", onShutdown);
    }
    return controller.signal;
  };
  let requestHeader: LazyHeaders | undefined;
  let responseHeader: LazyHeaders | undefined;
  let responseTrailer: LazyHeaders | undefined;
  return {
    service: init.method.parent satisfies DescService,
    method: init.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: init.url,
    get signal() {
      return signal();
    },
    timeoutMs: () => (deadlineAt === undefined ? undefined : deadlineAt - performance.now()),
    get requestHeader() {
      requestHeader ??= createLazyHeaders(init.requestHeader);
      return requestHeader;
    },
    get responseHeader() {
      responseHeader ??= createLazyHeaders(init.responseHeader);
      return responseHeader;
    },
    get responseTrailer() {
      responseTrailer ??= createLazyHeaders(init.responseTrailer);
      return responseTrailer;
    },
    values: init.values,
    abort,
    touched: () => ({
      header: responseHeader?.copied === true ? responseHeader : undefined,
      trailer: responseTrailer?.copied === true ? responseTrailer : undefined,
    }),
  };
}

/** A new error each time, as Connect's deadline makes one for every call that times out. */
function timedOut(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}
