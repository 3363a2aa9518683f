import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
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
