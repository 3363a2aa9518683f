import { createInterface } from "node:readline";
import { type ChatMessage, type Connected, type Event, LeaveReason, type MemberLeft } from "../gen/chat/v1/chat_pb.js";
import { type ChatClient, type ChatClientOptions, createChatClient } from "./chat-client.js";
import { createCommandRunner } from "./chat-commands.js";
import { type ConnectionSettings, describeFailure } from "./describe-failure.js";
import { compareSentAt } from "./sdk/compare-sent-at.js";
import { describeError } from "./sdk/describe-error.js";
import { readMissed } from "./sdk/read-history.js";
import { createResumableSession, type SessionEnd } from "./sdk/resumable-session.js";
import { createTranscript, type Transcript } from "./transcript.js";

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
 * server holds its session (see createResumableSession). Resolves with the
 * exit code: 0 after /quit or the end of input, 1 when the stream could not
 * open or ended on its own.
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

  const view = createEventView(client, username, print);
  const abort = new AbortController();
  let connected: () => void = () => {};
  const firstConnected = new Promise<undefined>((resolve) => {
    connected = () => resolve(undefined);
  });
  const session = createResumableSession({
    client,
    username,
    membershipEvents: true,
    retry: "while-resumable",
    signal: abort.signal,
    onConnected(hello, resuming) {
      print(connectedLine(hello, resuming));
      connected();
      view.connected(hello);
    },
    onEvent: view.event,
    onRetry({ attempt }) {
      if (attempt === 1) print("* connection lost; resuming…");
    },
  });
  const settings: ConnectionSettings = {
    serverUrl: options.serverUrl,
    token: options.clientOptions?.token !== undefined,
    ca: options.clientOptions?.ca !== undefined,
  };
  const streamEnded = session.run().then((end) => exitCode(end, print, settings));
  const first = await Promise.race([firstConnected, streamEnded]);
  if (first !== undefined) {
    rl.close();
    return first;
  }

  const run = createCommandRunner(client, print, view.transcript);

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
  abort.abort();
  return streamEnded;
}

/** What the terminal shows of the stream. */
interface EventView {
  /** What was shown, for the commands to add to. */
  transcript: Transcript;
  /** After each Connected: a resume that lost events reads them from history. */
  connected(hello: Connected): void;
  /** Prints an event, or holds it while a resume's gap is being read, to print it after. */
  event(event: Event): void;
}

function createEventView(client: ChatClient, username: string, print: (line: string) => void): EventView {
  const transcript = createTranscript(username, print);
  /** The stream's events held while a resume's gap is read from history, so that they print after it. */
  let held: Event[] | undefined;
  const show = (event: Event) => {
    const { kind } = event;
    if (kind.case === "message") {
      transcript.live(kind.value);
      return;
    }
    // The user's own joins and leaves, such as a group deleted under it.
    if ((kind.case === "memberJoined" || kind.case === "memberLeft") && kind.value.username === username) {
      transcript.inGroup(kind.value.group, kind.case === "memberJoined");
    }
    const line = formatMembership(event, username);
    if (line !== undefined) print(line);
  };
  return {
    transcript,
    connected(hello) {
      if (!hello.resumed || hello.lostEvents === 0n || held !== undefined) return;
      // What the server could not replay is in history: read it, then print what was held after it.
      held = [];
      void readGap(client, transcript, username).then((missed) => {
        // What the server replayed prints as it came, after: not twice.
        const replayed = new Set((held ?? []).map((e) => (e.kind.case === "message" ? e.kind.value.id : "")));
        transcript.missed(missed.filter((m) => !replayed.has(m.id)));
        for (const event of held ?? []) show(event);
        held = undefined;
      });
    },
    event(event) {
      if (held !== undefined) held.push(event);
      else show(event);
    },
  };
}

/**
 * Reads what a resume lost from the history of every conversation the user
 * is in: the messages it had not shown, oldest first. A
 * conversation whose history cannot be read (a group left meanwhile, a
 * server with history off) is skipped: the resume line said how many
 * events were lost. A direct conversation begun by a lost message is not
 * found: no call lists a user's conversations.
 */
async function readGap(client: ChatClient, transcript: Transcript, self: string): Promise<ChatMessage[]> {
  const missed: ChatMessage[] = [];
  await Promise.all(
    transcript.conversations().map(async (channel) => {
      try {
        missed.push(...(await readMissed(client, channel, transcript.has, self)));
      } catch {
        // Skipped, as said above.
      }
    }),
  );
  return missed.sort(compareSentAt);
}

/** The line a Connected prints: the first one, or how a resume went. */
function connectedLine(connected: Connected, resuming: boolean): string {
  if (!resuming) return `* connected as ${connected.username}`;
  if (!connected.resumed) return "* reconnected as a new session: your groups were left";
  if (connected.lostEvents === 0n) return "* resumed (nothing lost)";
  return `* resumed: ${connected.lostEvents} ${connected.lostEvents === 1n ? "event was" : "events were"} lost`;
}

/**
 * Prints why the session is over, and gives the exit code: 0 when the user
 * quit, else 1. A stream that never opened says how to fix what stopped it.
 */
function exitCode(end: SessionEnd, print: (line: string) => void, settings: ConnectionSettings): number {
  switch (end.kind) {
    case "stopped":
      return 0;
    case "ended":
      print("* stream ended by the server");
      return 1;
    case "failed":
      print(`* stream ended: ${end.connected ? describeError(end.error) : describeFailure(end.error, settings)}`);
      return 1;
    case "grace-over":
      print(`* stream ended: ${describeError(end.error)} (not resumed within ${end.graceMs} ms)`);
      return 1;
  }
}
