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
} from "../../gen/chat/v1/chat_pb.js";
import type { ChatBackend } from "../core/chat-backend.js";
import { ChatError, chatErrors, describeReason, quote } from "../core/chat-error.js";
import { isValidName } from "../core/names.js";
import type { ChannelRef, ChatEvent, ChatSession } from "../core/chat-session.js";
import { authenticatedUser } from "./auth-interceptor.js";
import { toConnectError } from "./error-interceptor.js";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { hardCloseKey } from "../transport/hard-close.js";

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
  /**
   * How long a response may wait for its client's flow-control window. A
   * client that answers PINGs but reads nothing would otherwise hold its
   * stream, and the response waiting in it, for as long as it likes.
   */
  stallTimeoutMs: number;
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
  const { maxEventsPerResponse, maxTextBytesPerResponse, cutOffGraceMs, stallTimeoutMs, listPageSize } = options;
  const stalls = createStallWatch(stallTimeoutMs, (session) => void hub.disconnect(session, chatErrors.stalled(session.username, stallTimeoutMs)));

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
      const hardClose = ctx.values.get(hardCloseKey);
      // JSON has no place for pre-encoded events: JSON clients (browsers on
      // the Connect protocol, curl) get messages built for them.
      const binary = !(ctx.requestHeader.get("content-type") ?? "").includes("json");
      const started = performance.now();
      const onCutOff = () => {
        // Only a stream cut off for falling behind counts as a slow consumer
        // (not one ended because Redis went away, say).
        if (session.signal.reason instanceof ChatError && session.signal.reason.kind === "exhausted") metrics?.slowConsumerCut();
        closeIfStuck(hardClose, cutOffGraceMs);
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
            stalls.writing(session);
            yield toConnectResponse(batch, binary);
            stalls.written(session);
            session.written();
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
        stalls.written(session);
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

    async listChannels(req) {
      if (req.pageSize < 0) {
        throw new ChatError("invalid-input", `page_size must not be negative, got ${req.pageSize}`);
      }
      const limit = req.pageSize === 0 ? listPageSize : Math.min(req.pageSize, listPageSize);
      const after = req.pageToken === "" ? undefined : readPageToken(req.pageToken);
      // One more than the page: whether it exists says whether another page follows.
      const channels = await hub.listChannels({ ...(after === undefined ? {} : { after }), limit: limit + 1 });
      const page = channels.slice(0, limit);
      return {
        channels: page.map((channel) => ({ name: channel.name, type: channelTypes[channel.type] })),
        nextPageToken: channels.length > limit ? pageToken(page[page.length - 1]!.name) : "",
      };
    },
  };
}

// A page token names the last channel of its page, so the next page starts
// after it whatever came or went meanwhile. It is opaque to clients (AIP-158):
// base64url, with a version prefix so that its form can change.
function pageToken(lastName: string): string {
  return Buffer.from(`v1:${lastName}`, "utf8").toString("base64url");
}

function readPageToken(token: string): string {
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  if (!text.startsWith("v1:") || !isValidName(text.slice(3))) {
    throw new ChatError("invalid-input", `page_token ${quote(token)} is not one this server issued: pass next_page_token as it came, or none for the first page`);
  }
  return text.slice(3);
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
 * its status, then closes its transport: an HTTP/2 stream is reset with
 * ENHANCE_YOUR_CALM (which gRPC clients read as RESOURCE_EXHAUSTED), a
 * browser's HTTP/1.1 socket is destroyed. A stream that ended in time is
 * left alone (closing it is then a no-op).
 */
function closeIfStuck(hardClose: (() => void) | undefined, graceMs: number): void {
  if (hardClose !== undefined) setTimeout(hardClose, graceMs).unref();
}

/** Watches the responses that wait for their client to read them. */
interface StallWatch {
  /** A response for this session has been handed to the transport. */
  writing(session: ChatSession): void;
  /** The transport took it (or the stream ended). */
  written(session: ChatSession): void;
}

/**
 * Creates a StallWatch that calls onStall for a session whose response has
 * waited longer than timeoutMs. One timer checks them all, a quarter of the
 * timeout apart, so that the fan-out path pays a map entry per response,
 * not a timer.
 */
function createStallWatch(timeoutMs: number, onStall: (session: ChatSession) => void): StallWatch {
  const since = new Map<ChatSession, number>();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const now = performance.now();
    for (const [session, started] of since) {
      if (now - started > timeoutMs) {
        since.delete(session);
        onStall(session);
      }
    }
    if (since.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    writing(session) {
      since.set(session, performance.now());
      if (timer === undefined) {
        timer = setInterval(check, Math.max(10, timeoutMs / 4));
        timer.unref();
      }
    },
    written(session) {
      since.delete(session);
    },
  };
}


