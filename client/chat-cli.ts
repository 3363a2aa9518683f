import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { ChannelType, type ChatMessage, type Connected, type Event, LeaveReason, type MemberLeft } from "../gen/chat/v1/chat_pb.js";
import { type ChatClient, type ChatClientOptions, createChatClient, describeError, isConnectionLost } from "./chat-client.js";
import { createCommandRunner } from "./chat-commands.js";

/** What the terminal client needs to run. */
export interface ChatCliOptions {
  username: string;
  /** The server's base URL, such as http://127.0.0.1:50051. */
  serverUrl: string;
  /** A signed token to send, and a CA to trust (see ChatClientOptions). */
  clientOptions?: ChatClientOptions;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Shows a prompt and keeps it below incoming messages. */
  interactive: boolean;
  /** A client to use instead of a new one, for tests. */
  client?: ChatClient;
}

/**
 * Formats a received message as one line: time (UTC), channel ("#group" or
 * "@user" for a direct message to that user), sender, text.
 */
export function formatMessage(message: ChatMessage): string {
  const time = message.sentAt ? timestampDate(message.sentAt).toISOString().slice(11, 19) : "--:--:--";
  const channel = message.channel;
  const where = channel?.type === ChannelType.GROUP ? `#${channel.name}` : `@${channel?.name ?? "?"}`;
  return `${time} ${where} <${message.sender}> ${message.text}`;
}

/**
 * Formats a membership event as one line, such as "* bob joined #team", or
 * returns undefined for the user's own join or leave: the command that made
 * it says so already. The user's own removal for another reason (the group
 * was deleted under it) does print.
 */
export function formatMembership(event: Event, me: string): string | undefined {
  const { kind } = event;
  if (kind.case === "memberJoined") {
    return kind.value.username === me ? undefined : `* ${kind.value.username} joined #${kind.value.group}`;
  }
  if (kind.case !== "memberLeft") return undefined;
  const left = kind.value;
  if (left.username !== me) return `* ${left.username} left #${left.group}${leaveReason(left)}`;
  if (left.reason === LeaveReason.LEFT) return undefined;
  return `* you are no longer in #${left.group}${leaveReason(left)}`;
}

/** Why a member left, as a parenthesis to append; empty for a plain leave. */
function leaveReason(left: MemberLeft): string {
  switch (left.reason) {
    case LeaveReason.DISCONNECTED:
      return " (disconnected)";
    case LeaveReason.CUT_OFF:
      return left.detail === "" ? " (cut off)" : ` (cut off: ${left.detail})`;
    case LeaveReason.GROUP_DELETED:
      return " (the group was deleted)";
    default:
      return "";
  }
}

/**
 * Runs the terminal client: connects as the user, prints what arrives, and
 * runs one command per input line, each to completion before the next, so a
 * script's lines take effect in order. Errors print as one line and the
 * client goes on. A stream whose connection drops is resumed while the
 * server holds its session (see SessionWatch). Resolves with the exit code:
 * 0 after /quit or the end of input, 1 when the stream could not open or
 * ended on its own.
 */
export async function runChatCli(options: ChatCliOptions): Promise<number> {
  const { username, output, interactive } = options;
  const client = options.client ?? createChatClient(options.serverUrl, username, options.clientOptions);
  const rl = createInterface({ input: options.input, output: interactive ? output : undefined, terminal: interactive });
  // Iterate from the start: lines that arrive before the iterator exists are
  // dropped, and piped input arrives at once.
  const lines = rl[Symbol.asyncIterator]();
  rl.setPrompt(`${username}> `);
  const print = (line: string) => {
    if (interactive) {
      output.write(`\r\x1b[K${line}\n`);
      rl.prompt(true);
    } else {
      output.write(`${line}\n`);
    }
  };

  const abort = new AbortController();
  let quitting = false;
  const stream = new SessionWatch(client, username, abort.signal, print, () => quitting);
  const streamEnded = stream.run();
  const first = await Promise.race([stream.connected.then(() => undefined), streamEnded]);
  if (first !== undefined) {
    rl.close();
    return first;
  }

  const run = createCommandRunner(client, print);

  if (interactive) rl.prompt();
  let code: number | undefined;
  for (;;) {
    const next = await Promise.race([lines.next(), streamEnded]);
    if (typeof next === "number") {
      code = next;
      break;
    }
    if (next.done) break;
    try {
      if (!(await run(next.value))) break;
    } catch (error) {
      print(`! ${describeError(error)}`);
    }
    if (interactive) rl.prompt();
  }
  rl.close();
  if (code !== undefined) return code;
  quitting = true;
  abort.abort();
  return streamEnded;
}

/** The first wait before a resume, and the longest: it doubles in between. */
const firstRetryMs = 100;
const maxRetryMs = 2000;

/**
 * The user's session as the terminal client sees it: it opens the stream,
 * prints what arrives, and when the connection drops while the server holds
 * dropped sessions (the last Connected carried a resume token), connects
 * again with the token and the count of events received, until the server's
 * resume grace has passed. connected resolves at the first Connected; run()
 * resolves with the exit code once the session is over (0 when the client
 * was quitting, 1 when the stream could not open, the server ended it, or
 * it could not be resumed).
 */
class SessionWatch {
  readonly connected: Promise<void>;
  private onConnected: () => void = () => {};
  /** The resume token of the last Connected; empty when the server holds no dropped sessions. */
  private token = "";
  /** How many events (every Event but Connected) the session delivered to this client, over all its streams. */
  private received = 0n;
  /** The resume grace of the last Connected, in milliseconds. */
  private graceMs = 0;
  /** While resuming: when the connection was lost, why, and the next wait. */
  private lost: { at: number; why: unknown; waitMs: number } | undefined;

  constructor(
    private readonly client: ChatClient,
    private readonly username: string,
    private readonly signal: AbortSignal,
    private readonly print: (line: string) => void,
    private readonly quitting: () => boolean,
  ) {
    this.connected = new Promise((resolve) => {
      this.onConnected = resolve;
    });
  }

  async run(): Promise<number> {
    for (;;) {
      const error = await this.stream();
      if (this.quitting()) return 0;
      if (error === undefined) {
        this.print("* stream ended by the server");
        return 1;
      }
      const ended = await this.waitToResume(error.reason);
      if (this.quitting()) return 0;
      if (ended !== undefined) {
        this.print(`* stream ended: ${ended}`);
        return 1;
      }
    }
  }

  /** Reads one stream of the session to its end: undefined when it completed, else why it failed. */
  private async stream(): Promise<{ reason: unknown } | undefined> {
    const resume = this.lost === undefined ? {} : { resumeToken: this.token, receivedEvents: this.received };
    try {
      for await (const res of this.client.connect({ username: this.username, membershipEvents: true, ...resume }, { signal: this.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") {
            this.connectedEvent(event.kind.value);
            continue;
          }
          this.received++;
          const line = event.kind.case === "message" ? formatMessage(event.kind.value) : formatMembership(event, this.username);
          if (line !== undefined) this.print(line);
        }
      }
      return undefined;
    } catch (reason) {
      return { reason };
    }
  }

  private connectedEvent(connected: Connected): void {
    if (this.lost === undefined) {
      this.print(`* connected as ${connected.username}`);
    } else if (!connected.resumed) {
      this.print("* reconnected as a new session: your groups were left");
    } else if (connected.lostEvents === 0n) {
      this.print("* resumed (nothing lost)");
    } else {
      this.print(`* resumed: ${connected.lostEvents} ${connected.lostEvents === 1n ? "event was" : "events were"} lost`);
    }
    this.lost = undefined;
    // The server counts the lost events as delivered: so must the count it is given next time.
    this.received = connected.resumed ? this.received + connected.lostEvents : 0n;
    this.token = connected.resumeToken;
    this.graceMs = connected.resumeGrace === undefined ? 0 : durationMs(connected.resumeGrace);
    this.onConnected();
  }

  /**
   * After a stream failed: waits before the next try and resolves with
   * undefined when the session may still be resumed, or with the line that
   * says why the session is over.
   */
  private async waitToResume(reason: unknown): Promise<string | undefined> {
    if (this.token === "" || !isConnectionLost(reason, this.signal)) return describeError(reason);
    const now = Date.now();
    if (this.lost === undefined) {
      this.lost = { at: now, why: reason, waitMs: firstRetryMs };
      this.print("* connection lost; resuming…");
    }
    const left = this.lost.at + this.graceMs - now;
    if (left <= 0) return `${describeError(this.lost.why)} (not resumed within ${this.graceMs} ms)`;
    // A quit during the wait ends it early; run() then sees quitting().
    await sleep(Math.min(this.lost.waitMs, left), undefined, { signal: this.signal }).catch(() => undefined);
    this.lost.waitMs = Math.min(this.lost.waitMs * 2, maxRetryMs);
    return undefined;
  }
}
