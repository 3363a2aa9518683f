import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import { createAuthorizationInterceptor } from "./sdk/authorization-interceptor.js";
import type { ChatClient } from "./sdk/resumable-session.js";

export type { ChatClient } from "./sdk/resumable-session.js";

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
