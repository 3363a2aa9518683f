import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { type ConnectRequest, type ConnectResponse, ConnectResponseSchema } from "../../gen/chat/v1/chat_pb.js";
import type { ChatBackend, Resumed } from "../core/chat-backend.js";
import { ChatError, chatErrors } from "../core/chat-error.js";
import type { ChatSession } from "../core/chat-session.js";
import { toConnectResponse } from "./connect-response.js";
import { droppedKey, endReasonKey, hardCloseKey, resumedKey, tokenExpiresAtKey, userKey } from "./context-keys.js";
import { createStallWatch, type StallWatch } from "./stall-watch.js";
import { tokenLeewaySeconds } from "./token-verifier.js";

/** Settings of the chat's Connect streams. */
export interface SessionStreamOptions {
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
  /** Signed identities: the request gate must have verified the caller, who may connect only as itself. */
  signed?: boolean;
}

/** The figures a stream reports about its deliveries: only it sees them. */
export interface DeliveryMetrics {
  /** A response left for a stream with this many events; depth is what was queued. */
  responseSent(events: number, queueDepth: number): void;
  /** A stream was cut off for falling behind. */
  slowConsumerCut(): void;
}

/** The handler of a Connect stream. */
export type SessionStream = (req: ConnectRequest, ctx: HandlerContext) => AsyncIterable<ConnectResponse>;

/**
 * Creates the handler of Connect: it opens a session in the backend, sends
 * Connected, then the session's events in batches as the client takes them,
 * until the client leaves, the backend cuts the session off, or the server
 * shuts down; then it releases the session. It throws the core's errors as
 * they are (the error interceptor maps them), and records why the session
 * ended under endReasonKey for the interceptors that log and count it.
 */
export function createSessionStream(backend: ChatBackend, logger: Logger, options: SessionStreamOptions, metrics?: DeliveryMetrics): SessionStream {
  const streams = new SessionStreams(backend, logger, options, metrics);
  return (req, ctx) => streams.serve(req, ctx);
}

/** What every stream of one handler shares (the backend, the settings, the stall watch), and what each stream does with it. */
class SessionStreams {
  // A stream's responses are watched under its own key: the session for a
  // session that has one stream in its life, else the stream's hold on the
  // session, so that an old stream's stall never ends the stream that
  // resumed the session after it.
  readonly streamSessions = new WeakMap<AbortSignal, ChatSession>();
  readonly stalls: StallWatch<ChatSession | AbortSignal>;

  constructor(
    readonly backend: ChatBackend,
    readonly logger: Logger,
    readonly options: SessionStreamOptions,
    readonly metrics: DeliveryMetrics | undefined,
  ) {
    this.stalls = createStallWatch<ChatSession | AbortSignal>(options.stallTimeoutMs, (key) => {
      const session = key instanceof AbortSignal ? this.streamSessions.get(key) : key;
      if (session === undefined || (key instanceof AbortSignal && key.aborted)) return;
      this.release(session, chatErrors.stalled(session.username, options.stallTimeoutMs));
    });
  }

  /** Ends a session in the backend, logging a failure rather than throwing it. */
  release(session: ChatSession, reason: unknown): void {
    void Promise.resolve(this.backend.disconnect(session, reason)).catch((err: unknown) =>
      this.logger.error({ user: session.username, err }, "session not released"),
    );
  }

  /** One Connect stream, from its request to its end (see SessionCall). */
  serve(req: ConnectRequest, ctx: HandlerContext): AsyncIterable<ConnectResponse> {
    return new SessionCall(this, req, ctx);
  }
}

/** Where a SessionCall is: not begun, between two responses, or over. */
type CallState = "start" | "open" | "done";

/**
 * One Connect stream's responses, as an async iterator written out rather
 * than an async generator: an idle stream waits in it for its session's
 * next event, and a suspended generator would hold its frame, its request
 * queue and the closures of its await on top (about 500 bytes per idle
 * stream, bench/stream-memory.ts). It keeps a generator's contract: the
 * calls run one at a time in order (one made while another is pending waits
 * for it), and a stream that has begun ends once, releasing its session,
 * whether it fails, the caller returns early, or the caller throws in.
 *
 * The first response is Connected; then the session's events in batches as
 * the client takes them, until the client leaves, the backend cuts the
 * session off, or the server shuts down. It throws the core's errors as they
 * are (the error interceptor maps them).
 */
class SessionCall implements AsyncIterable<ConnectResponse>, AsyncIterator<ConnectResponse> {
  private state: CallState = "start";
  /** Whether a call is in progress; inFlight is its promise when it did not answer at once. */
  private busy = false;
  private inFlight: Promise<IteratorResult<ConnectResponse>> | undefined;
  /** Whether the last response was a batch, whose write the next call confirms. */
  private batchOut = false;
  private session: ChatSession | undefined;
  private stream: AbortSignal | undefined;
  private hold: SessionHold | undefined;
  private binary = true;
  // Made once per stream, not at every wait. The call in progress ends
  // here unless it waits again, before its promise settles.
  private readonly resume = () => {
    try {
      const result = this.loop();
      if (!(result instanceof Promise)) this.busy = false;
      return result;
    } catch (error) {
      this.busy = false;
      throw error;
    }
  };

  // A wait that fails (none does today) ends the call in progress too, or
  // every later call would queue behind it for ever.
  private readonly failed = (error: unknown): never => {
    this.busy = false;
    throw error;
  };

  /** The request, until the session is open: a stream that stays open for hours need not keep it. */
  private req: ConnectRequest | undefined;

  constructor(
    private readonly streams: SessionStreams,
    req: ConnectRequest,
    private readonly ctx: HandlerContext,
  ) {
    this.req = req;
  }

  [Symbol.asyncIterator](): AsyncIterator<ConnectResponse> {
    return this;
  }

  next(): Promise<IteratorResult<ConnectResponse>> {
    return this.queue(() => (this.state === "start" ? this.begin() : this.state === "open" ? this.step() : done));
  }

  return(value?: unknown): Promise<IteratorResult<ConnectResponse>> {
    return this.queue(() => {
      if (this.state === "open") this.finish("completed");
      this.state = "done";
      return { done: true, value };
    });
  }

  throw(error?: unknown): Promise<IteratorResult<ConnectResponse>> {
    return this.queue(() => {
      if (this.state === "open") this.finish(error);
      this.state = "done";
      throw error;
    });
  }

  /**
   * Runs a call now, or after the one in progress: as in a generator, calls
   * never overlap. A call that waits clears busy itself (begin and resume)
   * before its promise settles, so that the promise needs no reaction of
   * its own while the stream is idle.
   */
  private queue(call: () => IteratorResult<ConnectResponse> | Promise<IteratorResult<ConnectResponse>>): Promise<IteratorResult<ConnectResponse>> {
    if (this.busy && this.inFlight !== undefined) {
      const again = () => this.queue(call);
      return this.inFlight.then(again, again);
    }
    this.busy = true;
    let result: IteratorResult<ConnectResponse> | Promise<IteratorResult<ConnectResponse>>;
    try {
      result = call();
    } catch (error) {
      this.busy = false;
      return Promise.reject(error);
    }
    if (result instanceof Promise) {
      this.inFlight = result;
      return result;
    }
    this.busy = false;
    return Promise.resolve(result);
  }

  /** Opens the session and answers Connected; the first call ends before its promise settles. */
  private async begin(): Promise<IteratorResult<ConnectResponse>> {
    try {
      return await this.open();
    } finally {
      this.busy = false;
    }
  }

  private async open(): Promise<IteratorResult<ConnectResponse>> {
    const { streams, ctx } = this;
    const { backend, options } = streams;
    // Only the first call opens: it runs once, in the "start" state.
    const req = this.req!;
    this.req = undefined;
    // From here the stream can only end, whatever happens before Connected.
    this.state = "done";
    if (ctx.signal.aborted) {
      // The server is shutting down: no new sessions.
      throw ctx.signal.reason;
    }
    // With signed identities, the token's user may only connect as itself.
    const verified = ctx.values.get(userKey);
    // Signed mode never lets a stream through unverified, even were the gate left unwired.
    if (options.signed === true && verified === undefined) throw chatErrors.notSignedIn(req.username);
    if (verified !== undefined && verified !== req.username) throw chatErrors.notYourName(verified, req.username);
    // The name the stream claims is its caller, for the log and the metrics.
    ctx.values.set(userKey, req.username);
    const { session, resumed, lost, stream } = await openSession(backend, req, verified !== undefined);
    this.session = session;
    this.stream = stream;
    this.hold = new SessionHold(streams, session, ctx, stream);
    if (stream !== undefined) streams.streamSessions.set(stream, session);
    if (resumed) ctx.values.set(resumedKey, true);
    // JSON has no place for pre-encoded events: JSON clients (browsers on
    // the Connect protocol, curl) get messages built for them.
    this.binary = !(ctx.requestHeader.get("content-type") ?? "").includes("json");
    this.state = "open";
    try {
      return { done: false, value: connected(backend, session, resumed, lost) };
    } catch (error) {
      this.fail(error);
    }
  }

  /** Goes on after the last response. */
  private step(): IteratorResult<ConnectResponse> | Promise<IteratorResult<ConnectResponse>> {
    if (this.batchOut) {
      this.batchOut = false;
      // Taken over by a resumed stream while the batch was written: the events are the new stream's now.
      if (isAborted(this.stream)) this.fail(this.stream?.reason);
      this.streams.stalls.written(this.stallKey());
      this.session?.written();
    }
    return this.loop();
  }

  /** Answers the next batch, or waits for one; throws once the stream must end. */
  private loop(): IteratorResult<ConnectResponse> | Promise<IteratorResult<ConnectResponse>> {
    const { streams, session, stream } = this;
    if (session === undefined || this.state !== "open") return done;
    try {
      // Taken over by a resumed stream: the events are the new stream's now.
      if (isAborted(stream)) throw stream?.reason;
      const { maxEventsPerResponse, maxTextBytesPerResponse } = streams.options;
      const depth = session.pending;
      const batch = session.take(maxEventsPerResponse, maxTextBytesPerResponse);
      if (batch.length > 0) {
        streams.metrics?.responseSent(batch.length, depth);
        streams.stalls.writing(this.stallKey());
        this.batchOut = true;
        return { done: false, value: toConnectResponse(batch, this.binary) };
      }
      if (session.signal.aborted) {
        // Cut off by the backend, or ended by the call's signal.
        throw session.signal.reason;
      }
    } catch (error) {
      this.fail(error);
    }
    return session.wait().then(this.resume, this.failed);
  }

  /** Ends the stream with an error, and throws it. */
  private fail(error: unknown): never {
    this.finish(error);
    this.state = "done";
    throw error;
  }

  /** What a generator's finally block did: the stream's stall watch and its hold on the session end. */
  private finish(reason: unknown): void {
    this.batchOut = false;
    this.streams.stalls.written(this.stallKey());
    this.hold?.end(reason);
  }

  /**
   * The key the stall watch knows the stream's responses by: its hold on a
   * resumable session, else the session (see SessionStreams).
   */
  private stallKey(): ChatSession | AbortSignal {
    // Only asked once the session is open.
    return this.stream ?? this.session!;
  }
}

/** What every call on an ended stream answers. */
const done: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * One stream's hold on its session: it ties the session to the call, and
 * ends the session when the call ends. A cut off session gets cutOffGraceMs
 * to end its stream with its status before the transport is closed under
 * it. The call can end while the stream is suspended in a write that never
 * completes (connect-node waits for "drain" or "error", and a stream
 * destroyed with its connection emits neither), so the call's own signal
 * ends the session too, or a ghost user would remain.
 *
 * One object per stream with one listener for both signals: what every
 * idle stream holds is what each connected user costs, and a closure per
 * step, each with its context, costs more (see bench/stream-memory.ts). A
 * listener object (handleEvent) would cost more still: node wraps it in a
 * closure of its own.
 */
class SessionHold {
  private closed = false;
  /** A resumable session's stream ends when the session does, and also when another stream takes the session over. */
  private readonly live: AbortSignal;
  private readonly expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly streams: SessionStreams,
    private readonly session: ChatSession,
    private readonly ctx: HandlerContext,
    private readonly stream: AbortSignal | undefined,
  ) {
    this.live = stream ?? session.signal;
    this.live.addEventListener("abort", this.onAbort);
    ctx.signal.addEventListener("abort", this.onAbort);
    this.expiry = expireWithToken(ctx.values.get(tokenExpiresAtKey), () => streams.release(session, chatErrors.tokenExpired(session.username)));
  }

  /** An abort of the call's signal, or of the session's (or the stream's hold on it). */
  private readonly onAbort = (event: Event): void => {
    if (event.target === this.ctx.signal) this.close(this.ctx.signal.reason);
    else this.cutOff();
  };

  /** The session ended, or another stream took it over: the call ends with why. */
  private cutOff(): void {
    const { ctx } = this;
    const { metrics, options } = this.streams;
    const why = this.live.reason;
    ctx.values.set(endReasonKey, why);
    // Only a stream cut off for falling behind counts as a slow consumer
    // (not one ended because Redis went away, say).
    if (why instanceof ChatError && why.kind === "exhausted") metrics?.slowConsumerCut();
    const hardClose = ctx.values.get(hardCloseKey);
    if (hardClose !== undefined) setTimeout(hardClose, options.cutOffGraceMs).unref();
  }

  /** The stream ended, with why: releases the session, or holds it for a resume. */
  end(reason: unknown): void {
    this.close(reason);
  }

  private close(reason: unknown): void {
    if (this.closed) return;
    this.closed = true;
    // However the stream ends (its call's abort included), the token's
    // expiry must not release a session that another stream may now hold.
    clearTimeout(this.expiry);
    const { session, stream, ctx, streams } = this;
    const { backend, logger } = streams;
    // A write that never completed (the connection died under it) must not end the session later as stalled.
    streams.stalls.written(stream ?? session);
    this.live.removeEventListener("abort", this.onAbort);
    ctx.signal.removeEventListener("abort", this.onAbort);
    // The session now belongs to the stream that took it over.
    if (stream?.aborted === true && !session.signal.aborted) return;
    if (session.signal.aborted) {
      // When the backend cut the session off, that is the reason, not the
      // write error that the reset stream produced afterwards.
      streams.release(session, session.signal.reason);
    } else if (ctx.values.get(droppedKey)() && backend.resumeGraceMs > 0) {
      void Promise.resolve(backend.hold(session, reason)).catch((err: unknown) => logger.error({ user: session.username, err }, "session not held"));
    } else {
      streams.release(session, reason);
    }
  }
}

/**
 * Opens the stream's session: the one its resume token names when the
 * backend still holds it, else a fresh one. A user whose identity is
 * signed takes its name back from a group squatting it (see the README's
 * threat model).
 */
async function openSession(backend: ChatBackend, req: ConnectRequest, signed: boolean): Promise<Omit<Resumed, "stream"> & { stream: AbortSignal | undefined }> {
  const optIns = { membership: req.membershipEvents, presence: req.presenceEvents };
  if (req.resumeToken === "" && req.receivedEvents !== 0n) throw chatErrors.receivedWithoutToken();
  if (req.resumeToken !== "") {
    if (req.receivedEvents > BigInt(Number.MAX_SAFE_INTEGER)) throw chatErrors.receivedTooMany(req.username, req.receivedEvents);
    try {
      return await backend.resume(req.username, { token: req.resumeToken, received: Number(req.receivedEvents), ...optIns });
    } catch (error) {
      // Nothing to resume: a fresh session, and Connected says it is one.
      if (!(error instanceof ChatError && error.kind === "not-found")) throw error;
    }
  }
  const session = await backend.connect(req.username, { reclaim: signed, ...optIns });
  return { session, resumed: false, lost: 0, stream: session.resumeToken === undefined ? undefined : session.attachStream() };
}

function connected(backend: ChatBackend, session: ChatSession, resumed: boolean, lost: number): ConnectResponse {
  const value = {
    username: session.username,
    resumeToken: session.resumeToken ?? "",
    resumed,
    lostEvents: BigInt(lost),
    membershipEvents: session.optIns.membership === true,
    presenceEvents: session.optIns.presence === true,
    ...(backend.resumeGraceMs > 0 ? { resumeGrace: durationFromMs(backend.resumeGraceMs) } : {}),
  };
  return create(ConnectResponseSchema, { events: [{ kind: { case: "connected", value } }] });
}

/** Whether a stream's hold on its session has ended: a function, so that the compiler does not take the value for fixed. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/**
 * Calls expire when the token expires (plus the leeway tokens get), so
 * that the client reconnects with a fresh token rather than keep a stream
 * that no valid credential backs. A token without "exp", or one valid for
 * longer than a timer reaches (about 24 days), sets no timer.
 */
function expireWithToken(expiresAt: number | undefined, expire: () => void): NodeJS.Timeout | undefined {
  if (expiresAt === undefined) return undefined;
  const delay = Math.max(0, expiresAt + tokenLeewaySeconds * 1000 - Date.now());
  if (delay > 2 ** 31 - 1) return undefined;
  const timer = setTimeout(expire, delay);
  timer.unref();
  return timer;
}
