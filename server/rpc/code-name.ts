import { Code } from "@connectrpc/connect";

/**
 * Spells a status code the way gRPC does everywhere else, such as NOT_FOUND:
 * in the server's logs and metrics. (The terminal client spells it alike:
 * see client/sdk/describe-error.ts.)
 */
export function grpcCodeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
