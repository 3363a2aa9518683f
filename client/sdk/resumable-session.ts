import { durationMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { ChatService, Connected, Event } from "../../gen/chat/v1/chat_pb.js";
import { isConnectionLost } from "./is-connection-lost.js";

/** A ChatService client, over whichever transport suits the program: gRPC in Node.js, Connect in the browser. */
export type ChatClient = Client<typeof ChatService>;

/** Where a session stands: what a client sends to resume it, and keeps to resume it after a reload. */
export interface SessionPlace {
  /** The resume token of the last Connected; empty when the server holds no dropped sessions. */
  resumeToken: string;
  /**
   * How many events (every Event but Connected) the session delivered to
   * this client over all its streams, plus the lost events of its resumes.
   */
  received: number;
  /** The resume grace of the last Connected, in milliseconds. */
  graceMs: number;
}

/** A stream that failed, or ended, after the session had been connected, and the try that follows. */
export interface SessionRetry {
  /** Why the stream ended: an error, or undefined when the server completed it. */
  reason: unknown;
  /** 1 for the first try after a drop, 2 for the next, and so on until a stream connects. */
  attempt: number;
  /** Whether the server may still hold the session (its grace has not passed since the drop). */
  resumable: boolean;
  /** The wait before the try, in milliseconds. */
  delayMs: number;
}

/** Why a session is over. */
export type SessionEnd =
  /** The signal was aborted: the user quit. */
  | { kind: "stopped" }
  /** The server completed the stream. */
  | { kind: "ended" }
  /** A stream failed in a way that another try would not mend; connected says whether any stream of the session had connected. */
  | { kind: "failed"; error: unknown; connected: boolean }
  /** The connection was lost (error says how) and not back within the server's resume grace. */
  | { kind: "grace-over"; error: unknown; graceMs: number };

/** What a resumable session needs. */
export interface ResumableSessionOptions {
  client: ChatClient;
  username: string;
  /** The opt-ins of every stream of the session. */
  membershipEvents?: boolean;
  presenceEvents?: boolean;
  /**
   * When to try again after a stream of a connected session ends:
   * "while-resumable" (the terminal client) only after a lost connection,
   * and only while the server may still hold the session; "always" (the
   * page) after any end but a takeover (ABORTED: another stream took the
   * session, and taking it back would go back and forth), past the grace
   * too, as a fresh session.
   */
  retry: "while-resumable" | "always";
  /** Ends the session: the open stream is cancelled and run() resolves with "stopped". */
  signal: AbortSignal;
  /** A session to resume from the start (the page after a reload); the grace counts from now. */
  resumeFrom?: SessionPlace;
  /** Each Connected; resuming is true when the stream was a retry (or resumeFrom was given). */
  onConnected(connected: Connected, resuming: boolean): void;
  /** Each other event, in order. */
  onEvent(event: Event): void;
  /** A stream ended and the session will try again after retry.delayMs. */
  onRetry?(retry: SessionRetry): void;
}

/** A session of the chat that outlives its streams. */
export interface ResumableSession {
  /** Streams until the session is over, and resolves with why. */
  run(): Promise<SessionEnd>;
  /** Where the session stands, to save it. */
  place(): SessionPlace;
}

/**
 * The one backoff between tries: from 100 ms, doubling, up to 2 s while the
 * server may still hold the session (a blip is over quickly, and the grace
 * is short), and on up to 30 s after it (a server that is down is not
 * helped by a crowd of clients).
 */
export function retryDelayMs(attempt: number, resumable: boolean): number {
  return Math.min(100 * 2 ** (attempt - 1), resumable ? 2000 : 30_000);
}

/**
 * Creates a session that opens the Connect stream and, when a stream ends,
 * opens another with the resume token and the count of events received, so
 * that the server resumes the same session: same groups, and the events
 * missed meanwhile, once. Used by the terminal client and the page alike.
 */
export function createResumableSession(options: ResumableSessionOptions): ResumableSession {
  const { client, username, signal } = options;
  const place: SessionPlace = options.resumeFrom === undefined ? { resumeToken: "", received: 0, graceMs: 0 } : { ...options.resumeFrom };
  let everConnected = false;
  /** While retrying: when and why the connected stream was lost, and the tries since. */
  let lost: { at: number; why: unknown; attempt: number } | undefined =
    options.resumeFrom === undefined ? undefined : { at: Date.now(), why: undefined, attempt: 0 };

  /** Reads one stream to its end: undefined when the server completed it, else why it failed. */
  async function stream(): Promise<{ error: unknown } | undefined> {
    const resuming = lost !== undefined;
    const resume = resuming && place.resumeToken !== "" ? { resumeToken: place.resumeToken, receivedEvents: BigInt(place.received) } : {};
    const request = { username, membershipEvents: options.membershipEvents ?? false, presenceEvents: options.presenceEvents ?? false, ...resume };
    try {
      for await (const res of client.connect(request, { signal })) {
        for (const event of res.events) {
          if (event.kind.case !== "connected") {
            place.received++;
            options.onEvent(event);
            continue;
          }
          const connected = event.kind.value;
          // The server counts the lost events as delivered: so must the count it is given next time.
          place.received = connected.resumed ? place.received + Number(connected.lostEvents) : 0;
          place.resumeToken = connected.resumeToken;
          place.graceMs = connected.resumeGrace === undefined ? 0 : durationMs(connected.resumeGrace);
          everConnected = true;
          lost = undefined;
          options.onConnected(connected, resuming);
        }
      }
      return undefined;
    } catch (error) {
      return { error };
    }
  }

  /** After a stream ended: the end of the session, or undefined once the wait before the next try is over. */
  async function next(outcome: { error: unknown } | undefined): Promise<SessionEnd | undefined> {
    if (signal.aborted) return { kind: "stopped" };
    if (!everConnected) return outcome === undefined ? { kind: "ended" } : { kind: "failed", error: outcome.error, connected: false };
    const now = Date.now();
    const reason = outcome?.error;
    lost ??= { at: now, why: reason, attempt: 0 };
    lost.attempt++;
    const resumable = place.resumeToken !== "" && now - lost.at < place.graceMs;
    if (options.retry === "while-resumable") {
      if (outcome === undefined) return { kind: "ended" };
      if (place.resumeToken === "" || !isConnectionLost(reason, signal)) return { kind: "failed", error: reason, connected: true };
      // The loss, not the last refused try, is what the user needs to hear about.
      if (!resumable) return { kind: "grace-over", error: lost.why, graceMs: place.graceMs };
    } else if (reason instanceof ConnectError && reason.isWireError && reason.code === Code.Aborted) {
      // From the server, not a transport's word for a reset connection.
      return { kind: "failed", error: reason, connected: true };
    }
    const delayMs = resumable ? Math.min(retryDelayMs(lost.attempt, true), lost.at + place.graceMs - now) : retryDelayMs(lost.attempt, false);
    options.onRetry?.({ reason, attempt: lost.attempt, resumable, delayMs });
    await sleep(delayMs, signal);
    // Stopped during the wait: no other try.
    return signal.aborted ? { kind: "stopped" } : undefined;
  }

  return {
    async run() {
      for (;;) {
        const end = await next(await stream());
        if (end !== undefined) return end;
      }
    },
    place: () => ({ ...place }),
  };
}

/** Waits, or less when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
