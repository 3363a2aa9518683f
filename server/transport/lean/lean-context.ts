import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";

/** What a lean call's context is made from. */
export interface LeanContextInit {
  method: DescMethod;
  url: string;
  /** Milliseconds left before the call's deadline, if it has one. */
  timeoutMs: number | undefined;
  shutdownSignal: AbortSignal;
  requestHeader: [string, string][];
  responseHeader: Record<string, string>;
  responseTrailer: Record<string, string>;
  values: ContextValues;
}

/** A handler context, and how the lean path ends it. */
export type LeanContext = HandlerContext & {
  /** Aborts the call's signal with reason, as Connect's context controller does, and stops its deadline. */
  abort(reason?: unknown): void;
};

/**
 * Creates a gRPC call's handler context with the semantics of Connect's
 * createHandlerContext, for the lean path. Connect links three signals into
 * the call's (a deadline signal, the request's and the server's shutdown), so
 * every call makes three AbortControllers and four listeners. Here one
 * controller does: the deadline is a timer that aborts it, the lean path
 * aborts it itself when the request's stream closes, and the shutdown signal
 * gets one listener, removed when the call ends. The reasons are Connect's:
 * DEADLINE_EXCEEDED "the operation timed out", the shutdown signal's reason,
 * or the reason given to abort().
 */
export function createLeanContext(init: LeanContextInit): LeanContext {
  const controller = new AbortController();
  const shutdown = init.shutdownSignal;
  let timer: NodeJS.Timeout | undefined;
  const abort = (reason?: unknown) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    shutdown.removeEventListener("abort", onShutdown);
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onShutdown = () => abort(shutdown.reason);
  const deadlineAt = init.timeoutMs === undefined ? undefined : Date.now() + init.timeoutMs;
  if (init.timeoutMs !== undefined && init.timeoutMs <= 0) abort(timedOut());
  else if (shutdown.aborted) abort(shutdown.reason);
  else {
    if (init.timeoutMs !== undefined) timer = setTimeout(() => abort(timedOut()), init.timeoutMs);
    shutdown.addEventListener("abort", onShutdown);
  }
  return {
    service: init.method.parent satisfies DescService,
    method: init.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: init.url,
    signal: controller.signal,
    timeoutMs: () => (deadlineAt === undefined ? undefined : deadlineAt - Date.now()),
    requestHeader: new Headers(init.requestHeader),
    responseHeader: new Headers(init.responseHeader),
    responseTrailer: new Headers(init.responseTrailer),
    values: init.values,
    abort,
  };
}

/** A new error each time, as Connect's deadline makes one for every call that times out. */
function timedOut(): ConnectError {
  return new ConnectError("the operation timed out", Code.DeadlineExceeded);
}
