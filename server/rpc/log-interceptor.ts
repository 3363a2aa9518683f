import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { userKey } from "./auth-interceptor.js";

/**
 * Creates an interceptor that writes one log line per failed unary call, with
 * its method, status code, message and caller. Successful calls are not
 * logged: at chat rates a line per message would cost more than the message.
 * Streams log their own opening and closing.
 */
export function createRpcLogInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    if (req.stream) {
      return next(req);
    }
    try {
      return await next(req);
    } catch (error) {
      const err = ConnectError.from(error);
      const serverFault = err.code === Code.Internal || err.code === Code.Unknown;
      // One message for every failed call, the details in fields: a flood of
      // failures is then one kind of line, which the logger summarises.
      logger[serverFault ? "error" : "info"](
        {
          rpc: req.method.name,
          code: grpcCodeName(err.code),
          user: req.contextValues.get(userKey),
          error: err.rawMessage,
          err: serverFault ? error : undefined,
        },
        "call failed",
      );
      throw error;
    }
  };
}

/**
 * Spells a status code the way gRPC does everywhere else, such as NOT_FOUND.
 */
export function grpcCodeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
