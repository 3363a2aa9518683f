import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../gen/chat/v1/chat_pb.js";

/** A ChatService client bound to one user. */
export type ChatClient = Client<typeof ChatService>;

/**
 * Creates an interceptor that names the caller in the authorization header of
 * every call: the username, as the server requires of every RPC but Connect
 * by default, or a signed token, which a server with --jwt-* requires of
 * every RPC.
 */
export function createAuthorizationInterceptor(credential: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}

/** How a client reaches a server that asks for more than the defaults. */
export interface ChatClientOptions {
  /** A signed token (JWT) to send instead of the username. */
  token?: string;
  /** PEM certificates to trust for an https:// server, besides the system's (a private CA). */
  ca?: Buffer;
}

/**
 * Creates a ChatService client for one user over the gRPC protocol on HTTP/2
 * (TLS for an https:// URL), on a connection of its own.
 */
export function createChatClient(baseUrl: string, username: string, options: ChatClientOptions = {}): ChatClient {
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: [createAuthorizationInterceptor(options.token ?? username)],
    ...(options.ca === undefined ? {} : { nodeOptions: { ca: options.ca } }),
    // Chat streams stay open for hours: PING so that a dead connection is
    // noticed from this side too.
    pingIntervalMs: 30_000,
    pingIdleConnection: true,
  });
  return createClient(ChatService, transport);
}

/** Formats an error as one line, "CODE: message". */
export { describeError } from "../server/rpc/code-name.js";

/**
 * Tells whether a call failed because its connection did, rather than
 * because the server refused or ended it: what a resumable stream should
 * resume after. A call cancelled through the given signal did not fail. Of
 * the statuses a server sends, only UNAVAILABLE asks for a retry (a server
 * going away, a proxy that lost it). Otherwise it looks for a network error
 * under the call's error (connect-node reports a reset connection as
 * ABORTED, with the socket's ECONNRESET as its cause), or a code that
 * connect-node gives a failed transport.
 */
export function isConnectionLost(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return false;
  const err = ConnectError.from(error);
  if (err.isWireError) return err.code === Code.Unavailable;
  if (hasNetworkCause(error)) return true;
  return transportCodes.has(err.code);
}

/** The codes connect-node gives a call whose transport failed (a refused connection, an unanswered PING, a reset stream). */
const transportCodes = new Set([Code.Unavailable, Code.Internal, Code.Canceled, Code.Unknown, Code.DeadlineExceeded]);

/** Whether an error, or one of its causes, is a socket's (ECONNRESET, EPIPE, ETIMEDOUT…) or an HTTP/2 session's. */
function hasNetworkCause(error: unknown): boolean {
  let current = error;
  // A few levels are enough; the bound guards against a cycle of causes.
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const code: unknown = "code" in current ? current.code : undefined;
    if (typeof code === "string" && (/^E[A-Z]+$/.test(code) || code.startsWith("ERR_HTTP2_"))) return true;
    current = current.cause;
  }
  return false;
}
