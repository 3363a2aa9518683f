import { ChatError } from "./chat-error.js";
import type { LeaveReason, MembershipEvent } from "./session-event.js";

/**
 * The reason a member left, for membership events, from why its session
 * ended. Only a cut-off carries the server's words (the limit reached): the
 * end of anyone else's stream (a transport error, a client's goodbye) is
 * nothing the other members need to read.
 */
export function leaveReasonOf(reason: unknown): [LeaveReason, string] {
  if (reason instanceof ChatError && reason.kind === "exhausted") return ["cut-off", reason.message];
  return ["disconnected", ""];
}

/** A membership event, its size measured for the queues. */
export function membershipEvent(kind: MembershipEvent["kind"], group: string, username: string, leave?: [LeaveReason, string]): MembershipEvent {
  const detail = leave?.[1] ?? "";
  return {
    kind,
    group,
    username,
    ...(leave === undefined ? {} : { reason: leave[0], detail }),
    textBytes: group.length + username.length + Buffer.byteLength(detail),
    holders: 0,
  };
}
