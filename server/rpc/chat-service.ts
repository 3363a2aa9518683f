import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ChatService } from "../../gen/chat/v1/chat_pb.js";
import type { ChatBackend } from "../core/chat-backend.js";
import { ChatError } from "../core/chat-error.js";
import { authenticatedUser } from "./auth-interceptor.js";
import { channelTypes } from "./channel-type.js";
import { pageToken, readPageToken } from "./page-token.js";
import { createSessionStream, type DeliveryMetrics, type SessionStreamOptions } from "./session-stream.js";

/** Settings of the chat service. */
export interface ChatServiceOptions extends SessionStreamOptions {
  /** The default and the largest page of ListChannels. */
  listPageSize: number;
}

/** The defaults of {@link ChatServiceOptions}. */
export const defaultChatServiceOptions: ChatServiceOptions = {
  maxEventsPerResponse: 512,
  maxTextBytesPerResponse: 1024 * 1024,
  cutOffGraceMs: 500,
  stallTimeoutMs: 30_000,
  listPageSize: 1000,
};

/**
 * Creates the implementation of chat.v1.ChatService on top of a backend.
 * Handlers throw the backend's ChatErrors as they are: the error interceptor
 * turns them into status codes, and the log and metrics interceptors record
 * every call.
 */
export function createChatService(
  backend: ChatBackend,
  logger: Logger,
  options: ChatServiceOptions = defaultChatServiceOptions,
  metrics?: DeliveryMetrics,
): ServiceImpl<typeof ChatService> {
  const { listPageSize } = options;
  return {
    connect: createSessionStream(backend, logger, options, metrics),

    async createGroupChat(req, ctx) {
      await backend.createGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async joinGroupChat(req, ctx) {
      await backend.joinGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async leaveGroupChat(req, ctx) {
      await backend.leaveGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async sendMessage(req, ctx) {
      await backend.send(authenticatedUser(ctx), req.channel, req.text);
      return {};
    },

    async listChannels(req) {
      if (req.pageSize < 0) {
        throw new ChatError("invalid-input", `page_size must not be negative, got ${req.pageSize}`);
      }
      const limit = req.pageSize === 0 ? listPageSize : Math.min(req.pageSize, listPageSize);
      const after = req.pageToken === "" ? undefined : readPageToken(req.pageToken);
      // One more than the page: whether it exists says whether another page follows.
      const channels = await backend.listChannels({ ...(after === undefined ? {} : { after }), limit: limit + 1 });
      const page = channels.slice(0, limit);
      return {
        channels: page.map((channel) => ({ name: channel.name, type: channelTypes[channel.type] })),
        nextPageToken: channels.length > limit ? pageToken(page[page.length - 1]!.name) : "",
      };
    },
  };
}
