import { Code, ConnectError } from "@connectrpc/connect";

/** What the user was doing when the error came: naming something (signing in, creating a group) makes a name conflict read as such. */
export type Doing = "naming" | "other";

/**
 * Says what went wrong in words for people, as a phrase that begins in
 * lower case (see sentence() for a line of its own): the server's own
 * message, which names the value at fault, with a lead-in where the status
 * code tells more than the message, and never the code itself.
 */
export function errorWords(error: unknown, doing: Doing = "other"): string {
  const err = ConnectError.from(error);
  // No status from a server: the request never got an answer.
  if (!err.isWireError) return "the server cannot be reached";
  const message = err.rawMessage;
  switch (err.code) {
    case Code.AlreadyExists:
      return doing === "naming" ? `that name is taken: ${message}` : message;
    case Code.Unauthenticated:
      return `not let in: ${message} (a server that asks for a signed token needs it in the Token field)`;
    case Code.DeadlineExceeded:
      return "the server took too long to answer";
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
    case Code.Unimplemented:
      return `the server failed: ${message}`;
    default:
      return message;
  }
}

/** A phrase as a line of its own: its first letter in upper case. */
export function sentence(phrase: string): string {
  return phrase.charAt(0).toUpperCase() + phrase.slice(1);
}
