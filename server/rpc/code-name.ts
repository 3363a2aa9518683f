import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Spells a status code the way gRPC does everywhere else, such as NOT_FOUND:
 * in the server's logs and metrics, the terminal client and the chat page.
 */
export function grpcCodeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * Formats an error as one line, "CODE: message", with the status code spelled
 * as gRPC does: what the terminal client and the page show.
 */
export function describeError(error: unknown): string {
  const err = ConnectError.from(error);
  return `${grpcCodeName(err.code)}: ${err.rawMessage}`;
}
