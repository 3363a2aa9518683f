import { constants as http2constants, type ServerHttp2Stream } from "node:http2";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  ChannelType,
  ChatService,
  ConnectResponseSchema,
  EventSchema,
  type ConnectResponse,
  type ChatMessageSchema,
} from "../gen/chat/v1/chat_pb.js";
import type { ChatBackend } from "./core/chat-backend.js";
import type { ChannelRef, ChatEvent, ChatSession } from "./core/chat-session.js";
import { authenticatedUser } from "./auth-interceptor.js";
import { toConnectError } from "./chat-error-interceptor.js";
import type { ChatMetrics } from "./chat-metrics.js";
import { http2StreamKey } from "./http2-stream-key.js";

/** Settings of the chat service's streams. */
export interface ChatServiceOptions {
  /** The most events coalesced into one ConnectResponse. */
  maxEventsPerResponse: number;
  /**
   * The most text, in bytes, coalesced into one ConnectResponse. Keeps each
   * response well under the 4 MiB that gRPC clients accept by default.
   */
  maxTextBytesPerResponse: number;
  /**
   * How long a stream cut off for falling behind may take to deliver its
   * final status before it is reset. A client that stopped reading would
   * never receive the trailers, which wait behind unread data.
   */
  cutOffGraceMs: number;
}

/** The defaults of {@link ChatServiceOptions}. */
export const defaultChatServiceOptions: ChatServiceOptions = {
  maxEventsPerResponse: 512,
  maxTextBytesPerResponse: 1024 * 1024,
  cutOffGraceMs: 500,
};

const channelTypes: Record<ChannelRef["type"], ChannelType> = {
  user: ChannelType.USER,
  group: ChannelType.GROUP,
};

/**
 * Creates the implementation of chat.v1.ChatService on top of a hub. Unary
 * handlers throw the hub's ChatErrors as they are, and the chat error
 * interceptor turns them into status codes; the Connect stream converts its
 * own with the same function.
 */
export function createChatService(
  hub: ChatBackend,
  logger: Logger,
  options: ChatServiceOptions = defaultChatServiceOptions,
  metrics?: ChatMetrics,
): ServiceImpl<typeof ChatService> {
  const { maxEventsPerResponse, maxTextBytesPerResponse, cutOffGraceMs } = options;

  return {
    async *connect(req, ctx) {
      if (ctx.signal.aborted) {
        // The server is shutting down: no new sessions.
        throw ctx.signal.reason;
      }
      let session: ChatSession;
      try {
        session = await hub.connect(req.username);
      } catch (error) {
        logger.info({ user: req.username, reason: describeReason(error) }, "session refused");
        throw toConnectError(error);
      }
      const username = session.username;
      const stream = ctx.values.get(http2StreamKey);
      // JSON has no place for pre-encoded events: JSON clients (browsers on
      // the Connect protocol, curl) get messages built for them.
      const binary = !(ctx.requestHeader.get("content-type") ?? "").includes("json");
      const started = performance.now();
      const onCutOff = () => {
        metrics?.slowConsumerCut();
        resetIfStuck(stream, cutOffGraceMs);
      };
      // The call can end while this generator is suspended in a yield whose
      // write never completes: connect-node waits for "drain" or "error", and
      // a stream destroyed with its connection emits neither. The call's own
      // signal therefore ends the session too, or a ghost user would remain.
      const onCallEnd = () => close(ctx.signal.reason);
      let closed = false;
      const close = (reason: unknown) => {
        if (closed) return;
        closed = true;
        session.signal.removeEventListener("abort", onCutOff);
        ctx.signal.removeEventListener("abort", onCallEnd);
        // When the hub cut the session off, that is the reason, not the write
        // error that the reset stream produced afterwards.
        const why = session.signal.aborted ? session.signal.reason : reason;
        void Promise.resolve(hub.disconnect(session, why)).catch((err: unknown) =>
          logger.error({ user: username, err }, "session not released"),
        );
        logger.info({ user: username, reason: describeReason(why) }, "session closed");
        metrics?.callEnded("Connect", why === "completed" ? "OK" : ConnectError.from(toConnectError(why)).code, (performance.now() - started) / 1000);
      };
      session.signal.addEventListener("abort", onCutOff);
      ctx.signal.addEventListener("abort", onCallEnd);
      logger.info({ user: username }, "session opened");
      let reason: unknown = "completed";
      try {
        yield create(ConnectResponseSchema, {
          events: [{ kind: { case: "connected", value: { username } } }],
        });
        for (;;) {
          const depth = session.pending;
          const batch = session.take(maxEventsPerResponse, maxTextBytesPerResponse);
          if (batch.length > 0) {
            metrics?.responseSent(batch.length, depth);
            yield toConnectResponse(batch, binary);
            continue;
          }
          if (session.signal.aborted) {
            // Cut off by the hub, or ended by onCallEnd when the call ended.
            throw session.signal.reason;
          }
          await session.wait();
        }
      } catch (error) {
        reason = error;
        // A stream's errors are mapped here rather than by the chat error
        // interceptor, which would wrap every response in one more async
        // generator.
        throw toConnectError(error);
      } finally {
        close(reason);
      }
    },

    async createGroupChat(req, ctx) {
      await hub.createGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async joinGroupChat(req, ctx) {
      await hub.joinGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async leaveGroupChat(req, ctx) {
      await hub.leaveGroup(authenticatedUser(ctx), req.name);
      return {};
    },

    async sendMessage(req, ctx) {
      await hub.send(authenticatedUser(ctx), req.channel, req.text);
      return {};
    },

    async listChannels() {
      const channels = await hub.listChannels();
      return { channels: channels.map((channel) => ({ name: channel.name, type: channelTypes[channel.type] })) };
    },
  };
}

// Each group message is encoded once, however many members receive it: the
// encoded Event (with its length prefix) is kept for as long as the event is
// alive, and responses carry it as-is.
const encodedEvents = new WeakMap<ChatEvent, Uint8Array>();

function encodedEvent(event: ChatEvent): Uint8Array {
  let data = encodedEvents.get(event);
  if (data === undefined) {
    const bytes = toBinary(EventSchema, create(EventSchema, { kind: { case: "message", value: toChatMessage(event) } }));
    data = new BinaryWriter().bytes(bytes).finish();
    encodedEvents.set(event, data);
  }
  return data;
}

/**
 * Builds one ConnectResponse carrying a batch of events in order. For the
 * binary format, the events travel as pre-encoded occurrences of field 1
 * (events) in the message's unknown fields, which protobuf-es writes out
 * verbatim: on the wire this is exactly a ConnectResponse with its events
 * set, without building and encoding the same messages again for every
 * member of a group. The JSON format ignores unknown fields, so for it the
 * events are built as messages.
 */
export function toConnectResponse(batch: readonly ChatEvent[], binary: boolean): ConnectResponse {
  if (!binary) {
    return create(ConnectResponseSchema, {
      events: batch.map((event) => ({ kind: { case: "message" as const, value: toChatMessage(event) } })),
    });
  }
  const response = create(ConnectResponseSchema);
  response.$unknown = batch.map((event) => ({ no: 1, wireType: WireType.LengthDelimited, data: encodedEvent(event) }));
  return response;
}

function toChatMessage(event: ChatEvent): MessageInitShape<typeof ChatMessageSchema> {
  return {
    id: event.id,
    sender: event.sender,
    channel: { name: event.channel.name, type: channelTypes[event.channel.type] },
    text: event.text,
    sentAt: timestampFromDate(event.sentAt),
  };
}

/**
 * After a session is cut off, gives its stream a grace period to end with
 * its status, then resets it with ENHANCE_YOUR_CALM, which gRPC clients read
 * as RESOURCE_EXHAUSTED. A stream that ended in time is left alone.
 */
function resetIfStuck(stream: ServerHttp2Stream | undefined, graceMs: number): void {
  if (stream === undefined) {
    return;
  }
  setTimeout(() => {
    if (!stream.closed && !stream.destroyed) {
      stream.close(http2constants.NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }, graceMs).unref();
}

function describeReason(reason: unknown): string {
  if (typeof reason === "string") {
    return reason;
  }
  if (reason instanceof Error) {
    return reason.message;
  }
  return String(reason);
}
