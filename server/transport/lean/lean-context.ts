import type * as http2 from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { createLazyHeaders, type LazyHeaders } from "./lazy-headers.js";
import { errorFromResetCode } from "./reset-codes.js";

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
  /** Whether the call has been aborted or ended (without making its signal to tell). */
  readonly ended: boolean;
  /**
   * The listener of its HTTP/2 stream's "close": aborts the call, if it is
   * still running, with the status that connect-node derives from the reset
   * code (a client's cancel is CANCELED).
   */
  readonly streamClosed: (this: http2.ServerHttp2Stream) => void;
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
 * call ends. The reasons are Connect's: DEADLINE_EXCEEDED "the operation
 * timed out", the shutdown signal's reason, or the reason given to abort().
 * The three Headers read from records until something changes them
 * (lazy-headers.ts), as most calls read one header of the request and change
 * none of the response's: building them costs more than the rest of the
 * context. It is a class, its lazy parts behind getters on its prototype: an
 * object literal with getters is kept in dictionary mode, about 800 bytes
 * for every open stream. (A spread copies no prototype getters: the lean
 * path never hands this object to a handler or a gate, only what
 * connect-steps.ts makes of it.)
 */
export function createLeanContext(init: LeanContextInit): LeanContext {
  return new LeanCallContext(init);
}

class LeanCallContext implements LeanContext {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly url: string;
  readonly values: ContextValues;
  readonly #init: LeanContextInit;
  readonly #deadlineAt: number | undefined;
  // The controller is made when the signal is first read: a unary call whose
  // handler and interceptors never read it (most of them) pays for no
  // controller, no shutdown listener, no deadline timer and no abort event.
  // Until then, an abort is only remembered, and the signal comes out
  // already aborted with that reason, as it would have been.
  #controller: AbortController | undefined;
  #endedWith: { reason: unknown } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #requestHeader: LazyHeaders | undefined;
  #responseHeader: LazyHeaders | undefined;
  #responseTrailer: LazyHeaders | undefined;
  /** Bound once: it is the shutdown signal's listener. */
  readonly #onShutdown = () => this.abort(this.#init.shutdownSignal.reason);
  readonly streamClosed: (this: http2.ServerHttp2Stream) => void;
  /** An own function, as Connect's is: handlers may call it detached. */
  readonly timeoutMs = () => (this.#deadlineAt === undefined ? undefined : this.#deadlineAt - performance.now());

  constructor(init: LeanContextInit) {
    this.#init = init;
    this.service = init.method.parent;
    this.method = init.method;
    this.url = init.url;
    this.values = init.values;
    this.#deadlineAt = init.timeoutMs === undefined ? undefined : performance.now() + init.timeoutMs;
    // A function of its own, not an arrow: node calls it with the stream as
    // this, and it reaches the context through the closure.
    const context = this;
    this.streamClosed = function (this: http2.ServerHttp2Stream) {
      if (!context.ended) context.abort(errorFromResetCode(this.rstCode));
    };
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    const shutdown = this.#init.shutdownSignal;
    const left = this.timeoutMs();
    if (this.#endedWith !== undefined) this.abort(this.#endedWith.reason);
    else if (left !== undefined && left <= 0) this.abort(timedOut());
    else if (shutdown.aborted) this.abort(shutdown.reason);
    else {
      if (left !== undefined) this.#timer = setTimeout(() => this.abort(timedOut()), left);
      shutdown.addEventListener("abort", this.#onShutdown);
    }
    return controller.signal;
  }

  get ended(): boolean {
    return this.#endedWith !== undefined || this.#controller?.signal.aborted === true;
  }

  abort(reason?: unknown): void {
    const controller = this.#controller;
    if (controller === undefined) {
      this.#endedWith ??= { reason };
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#init.shutdownSignal.removeEventListener("abort", this.#onShutdown);
    if (!controller.signal.aborted) controller.abort(reason);
  }

  get requestHeader(): Headers {
    this.#requestHeader ??= createLazyHeaders(this.#init.requestHeader);
    return this.#requestHeader;
  }

  get responseHeader(): Headers {
    this.#responseHeader ??= createLazyHeaders(this.#init.responseHeader);
    return this.#responseHeader;
  }

  get responseTrailer(): Headers {
    this.#responseTrailer ??= createLazyHeaders(this.#init.responseTrailer);
    return this.#responseTrailer;
  }

  touched(): { header: Headers | undefined; trailer: Headers | undefined } {
    return {
      header: this.#responseHeader?.copied === true ? this.#responseHeader : undefined,
      trailer: this.#responseTrailer?.copied === true ? this.#responseTrailer : undefined,
    };
  }
}

/** A new error each time, as Connect's deadline makes one for every call that times out. */
function timedOut(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}
