import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ChatError, type ChatErrorKind } from "../core/chat-error.js";
import { observeStream, type StreamObserver } from "./observe-stream.js";

const codes: Record<ChatErrorKind, Code> = {
  "invalid-input": Code.InvalidArgument,
  "already-exists": Code.AlreadyExists,
  "not-signed-in": Code.Unauthenticated,
  "not-found": Code.NotFound,
  "not-a-member": Code.FailedPrecondition,
  "not-allowed": Code.PermissionDenied,
  exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
  "switched-off": Code.FailedPrecondition,
};

/**
 * Converts a {@link ChatError} into the ConnectError that carries its status
 * code on the wire. This is the only place where chat failures meet status
 * codes. Other errors pass through unchanged: a ConnectError keeps its code,
 * and anything else becomes INTERNAL in the framework, as it should.
 */
export function toConnectError(error: unknown): unknown {
  if (error instanceof ChatError) {
    return new ConnectError(error.message, codes[error.kind], undefined, undefined, error);
  }
  return error;
}

/**
 * Creates the interceptor that converts the chat core's errors into
 * ConnectErrors, for unary calls and for every message of a stream, so that
 * handlers throw the core's errors as they are.
 */
export function createErrorInterceptor(): Interceptor {
  const streams: StreamObserver = { mapError: toConnectError };
  return (next) => async (req) => {
    try {
      const res = await next(req);
      return req.stream && res.stream ? observeStream(req, res, streams) : res;
    } catch (error) {
      throw toConnectError(error);
    }
  };
}
