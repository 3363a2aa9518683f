import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, ConnectError } from "@connectrpc/connect";
import { type ChatService, type Connected, type ConnectRequestSchema, type Event, LeaveReason } from "../../gen/chat/v1/chat_pb.js";
import { eventually } from "./eventually.js";

/** One line per event of the contract: "message alice>team: hi", "joined team bob", "left team bob LEFT", "channels +a -b". */
export function describeEvent(event: Event): string {
  const k = event.kind;
  if (k.case === "message") return `message ${k.value.sender}>${k.value.channel?.name}: ${k.value.text}`;
  if (k.case === "memberJoined") return `joined ${k.value.group} ${k.value.username}`;
  if (k.case === "memberLeft") return `left ${k.value.group} ${k.value.username} ${LeaveReason[k.value.reason]}`;
  if (k.case === "channelsChanged") return `channels +${k.value.added.map((c) => c.name).join(",")} -${k.value.removed.map((c) => c.name).join(",")}`;
  return `${k.case}`;
}

/** A Connect stream read in the background. */
export interface EventStream {
  /** Every event after Connected, described (see describeEvent). */
  readonly events: string[];
  /** Resolves when the stream ends: undefined for OK, else its error. */
  readonly ended: Promise<ConnectError | undefined>;
  cancel(): void;
  /** Resolves with the stream's Connected event once it has come. */
  connected(): Promise<Connected>;
  /** Resolves once an event is the line, or matches the pattern. */
  waitFor(line: string | RegExp): Promise<void>;
}

/** Opens a Connect stream that records Connected and every event after it. */
export function openEventStream(client: Client<typeof ChatService>, req: MessageInitShape<typeof ConnectRequestSchema>): EventStream {
  const abort = new AbortController();
  const events: string[] = [];
  let connected: Connected | undefined;
  const ended = (async () => {
    try {
      for await (const res of client.connect(req, { signal: abort.signal })) {
        for (const event of res.events) {
          if (event.kind.case === "connected") connected = event.kind.value;
          else events.push(describeEvent(event));
        }
      }
      return undefined;
    } catch (error) {
      return ConnectError.from(error);
    }
  })();
  const until = (check: () => boolean, what: string) => eventually(check, () => `never ${what}; events: ${JSON.stringify(events)}`);
  return {
    events,
    ended,
    cancel: () => abort.abort(),
    connected: async () => {
      await until(() => connected !== undefined, "connected");
      return connected!;
    },
    waitFor: (line: string | RegExp) => until(() => events.some((e) => (typeof line === "string" ? e === line : line.test(e))), `got ${line}`),
  };
}
