import { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/**
 * Formats an error as one line, "CODE: message", with the status code spelled
 * as gRPC does (NOT_FOUND): what the terminal client prints.
 */
export function describeError(error: unknown): string {
  const err = ConnectError.from(error);
  return `${codeToString(err.code).toUpperCase()}: ${err.rawMessage}`;
}
