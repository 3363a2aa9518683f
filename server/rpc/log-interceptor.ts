import { Code, ConnectError, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { grpcCodeName } from "./code-name.js";
import { resumedKey, userKey } from "./context-keys.js";
import { toConnectError } from "./error-interceptor.js";
import { observeStream, type StreamObserver } from "./observe-stream.js";

/**
 * Creates the interceptor that writes the calls' log lines. A unary call
 * that fails gets one line, with its method, status code, message and caller;
 * successful ones get none: at chat rates a line per message would cost more
 * than the message. A stream (a chat session) gets a line when it opens and
 * one when it ends, with why; one that fails before its first response is
 * "session refused".
 */
export function createLogInterceptor(logger: Logger): Interceptor {
  const sessions: StreamObserver = {
    first: (call) => logger.info({ user: call.values.get(userKey), ...(call.values.get(resumedKey) ? { resumed: true } : {}) }, "session opened"),
    end: (call, reason) => logger.info({ user: call.values.get(userKey), reason: describeEnd(reason) }, call.opened ? "session closed" : "session refused"),
  };
  return (next) => async (req) => {
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      logFailure(logger, req.method.name, req.contextValues.get(userKey), error);
      throw error;
    }
    return req.stream && res.stream ? observeStream(req, res, sessions) : res;
  };
}

/**
 * Wraps a request gate (signed identities' token check) so that a call it
 * refuses gets the line a failed call gets: the gate runs before any
 * interceptor, so the log interceptor never sees it.
 */
export function logGateRefusals(gate: (context: HandlerContext) => Promise<void>, logger: Logger): (context: HandlerContext) => Promise<void> {
  return async (context) => {
    try {
      await gate(context);
    } catch (error) {
      logFailure(logger, context.method.name, undefined, error);
      throw error;
    }
  };
}

function logFailure(logger: Logger, rpc: string, user: string | undefined, error: unknown): void {
  const err = ConnectError.from(error);
  const serverFault = err.code === Code.Internal || err.code === Code.Unknown;
  // One message for every failed call, the details in fields: a flood of
  // failures is then one kind of line, which the logger summarises.
  logger[serverFault ? "error" : "info"](
    { rpc, code: grpcCodeName(err.code), user, error: err.rawMessage, err: serverFault ? error : undefined },
    "call failed",
  );
}

/** Why a stream ended, in words: its status's message, or "completed". */
function describeEnd(reason: unknown): string {
  return reason === undefined ? "completed" : ConnectError.from(toConnectError(reason)).rawMessage;
}
