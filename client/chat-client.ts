import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../gen/chat/v1/chat_pb.js";

/** A ChatService client bound to one user. */
export type ChatClient = Client<typeof ChatService>;

/**
 * Creates an interceptor that names the caller in the authorization header of
 * every call, as the server requires of every RPC but Connect.
 */
export function createAuthorizationInterceptor(username: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${username}`);
    return next(req);
  };
}

/**
 * Creates a ChatService client for one user over the gRPC protocol on HTTP/2,
 * on a connection of its own.
 */
export function createChatClient(baseUrl: string, username: string): ChatClient {
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: [createAuthorizationInterceptor(username)],
    // Chat streams stay open for hours: PING so that a dead connection is
    // noticed from this side too.
    pingIntervalMs: 30_000,
    pingIdleConnection: true,
  });
  return createClient(ChatService, transport);
}

/** Formats an error as one line, "CODE: message". */
export { describeError } from "../server/rpc/code-name.js";
