import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { ChatService } from "../../gen/chat/v1/chat_pb.js";
import type { ChannelPage } from "../core/channel-page.js";
import type { ChatBackend, MaybePromise } from "../core/chat-backend.js";
import { ChatError } from "../core/chat-error.js";
import { authenticatedUser } from "./auth-interceptor.js";
import { channelTypes } from "./channel-types.js";
import { toChatMessage, toSendMessageResponse } from "./connect-response.js";
import { historyPageToken, pageToken, readHistoryPageToken, readPageToken } from "./page-token.js";
import { createSessionStream, type DeliveryMetrics, type SessionStreamOptions } from "./session-stream.js";

/** Settings of the chat service. */
export interface ChatServiceOptions extends SessionStreamOptions {
  /** The default and the largest page of ListChannels and ListGroupMembers. */
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

/** The size of a page as AIP-158 asks: 0 is the default, larger ones are lowered to it, negative ones are INVALID_ARGUMENT. */
function pageLimit(pageSize: number, maxPageSize: number): number {
  if (pageSize < 0) {
    throw new ChatError("invalid-input", `page_size must not be negative, got ${pageSize}`);
  }
  return pageSize === 0 ? maxPageSize : Math.min(pageSize, maxPageSize);
}

/**
 * Serves one page of a name-sorted list the way AIP-158 describes (see
 * pageLimit), the token naming the last entry of the page before.
 */
async function paged<T extends { name: string }>(
  req: { pageSize: number; pageToken: string },
  maxPageSize: number,
  list: (page: ChannelPage) => MaybePromise<T[]>,
): Promise<{ channels: T[]; nextPageToken: string }> {
  const limit = pageLimit(req.pageSize, maxPageSize);
  const after = req.pageToken === "" ? undefined : readPageToken(req.pageToken);
  // One more than the page: whether it exists says whether another page follows.
  const entries = await list({ ...(after === undefined ? {} : { after }), limit: limit + 1 });
  const page = entries.slice(0, limit);
  return { channels: page, nextPageToken: entries.length > limit ? pageToken(page[page.length - 1]!.name) : "" };
}

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
      const message = await backend.send(authenticatedUser(ctx), req.channel, req.text, req.requestId);
      return toSendMessageResponse(message);
    },

    async listMessages(req, ctx) {
      const caller = authenticatedUser(ctx);
      const limit = pageLimit(req.pageSize, listPageSize);
      const before = req.pageToken === "" ? undefined : readHistoryPageToken(req.pageToken, caller, req.channel);
      // A page is bounded in bytes too, as a stream's response is: 1,000 messages of 4 KB would pass what gRPC clients take by default (4 MiB).
      const maxTextBytes = options.maxTextBytesPerResponse;
      const { messages, next } = await backend.listMessages(
        caller,
        req.channel,
        before === undefined ? { limit, maxTextBytes } : { before, limit, maxTextBytes },
      );
      return { messages: messages.map(toChatMessage), nextPageToken: next === undefined ? "" : historyPageToken(caller, req.channel, next) };
    },

    async listChannels(req) {
      const { channels, nextPageToken } = await paged(req, listPageSize, (page) => backend.listChannels(page));
      return { channels: channels.map((channel) => ({ name: channel.name, type: channelTypes[channel.type] })), nextPageToken };
    },

    async listGroupMembers(req, ctx) {
      const caller = authenticatedUser(ctx);
      const { channels, nextPageToken } = await paged(req, listPageSize, async (page) =>
        (await backend.listMembers(caller, req.group, page)).map((name) => ({ name })),
      );
      return { usernames: channels.map((member) => member.name), nextPageToken };
    },
  };
}
