/** What a session's client asked to receive besides messages. */
export interface EventOptIns {
  /** MemberJoined and MemberLeft for its groups. */
  membership?: boolean;
  /** ChannelsChanged. */
  presence?: boolean;
}

/** The opt-ins of a session that asked for nothing besides messages, shared by all of them. */
export const noOptIns: Readonly<EventOptIns> = Object.freeze({ membership: false, presence: false });

/** What a session gets of what it asked for: presence only when the server has it on. */
export function grantOptIns(asked: EventOptIns, presenceOn: boolean): Readonly<EventOptIns> {
  const membership = asked.membership === true;
  const presence = asked.presence === true && presenceOn;
  return membership || presence ? { membership, presence } : noOptIns;
}
