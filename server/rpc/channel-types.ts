import { ChannelType } from "../../gen/chat/v1/chat_pb.js";
import type { ChannelRef } from "../core/session-event.js";

/** The contract's ChannelType of each kind of channel in the core. */
export const channelTypes: Readonly<Record<ChannelRef["type"], ChannelType>> = {
  user: ChannelType.USER,
  group: ChannelType.GROUP,
};
