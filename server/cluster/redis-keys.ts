/**
 * The names of the keys and channels the nodes share, in one place. Every
 * key and channel of one user or group name carries the name as its hash
 * tag (`chat:{alice}:user`), so that on a Redis Cluster all of them live in
 * one slot and one script can change them atomically; a name is a user or a
 * group, never both, so the claim on a name is one slot's business too.
 * What spans names (the directory that ListChannels pages, the nodes and
 * their leases) carries the tag `{#dir}`, which no name can be ("#" is not
 * allowed in names). The scripts in redis-scripts.ts build the same names
 * from a name with {@link nameTag}'s rule.
 *
 * Per name:
 * - chat:{n}:user     hash   the user's claim: node, hash (of its resume token), epoch, seq, held, leaving, who (its person's tag)
 * - chat:{n}:groups   set    the groups the user is in (a superset while a join or leave is half done)
 * - chat:{n}:group    hash   the group's claim: epoch, seq
 * - chat:{n}:members  hash   member -> the sequence number of its joining
 * - chat:{n}:inbox    shard channel of the user's deliveries (direct messages, control words)
 * - chat:{n}:room     shard channel of the group's messages and membership events, one order
 * - chat:{n}:history  stream   a group's history (with chat:{n}:history:bytes, its size)
 * - chat:{n}:dm:<sender>:<tag>  stream   the direct messages user n received from a sender (and :bytes)
 * - chat:{n}:dms      set    those streams, dropped with the user's session unless names are signed
 * - chat:{n}:rid:<tag>:<id>             string  a request id of user n's sends (its person's), bound to its channel and text
 * - chat:{n}:sent:<sender>:<tag>:<id>   string  a request id this channel took, with the message it answered and its text's digest
 * (see docs/history.md; the scripts alone build these names)
 *
 * The directory, tagged {#dir}:
 * - chat:{#dir}:users, chat:{#dir}:groups  hashes: the names online and the groups -> their claim's epoch
 * - chat:{#dir}:nodes                      set of the node ids that registered
 * - chat:{#dir}:lease:<id>                 string that expires unless its node refreshes it
 * - chat:{#dir}:node:<id>                  set of the users a node holds, for the sweep of a dead node
 * - chat:{#dir}:presence                   shard channel of presence changes
 *
 * And per node, tagged {#node:<id>}: chat:{#node:<id>}:replies, the shard
 * channel on which other nodes acknowledge its requests.
 */

/** The hash tag of a user or group name. */
export const nameTag = (name: string) => `{${name}}`;

/** The keys and channels of one name. */
export const nameKeys = {
  user: (name: string) => `chat:{${name}}:user`,
  groups: (name: string) => `chat:{${name}}:groups`,
  group: (name: string) => `chat:{${name}}:group`,
  members: (name: string) => `chat:{${name}}:members`,
  inbox: (name: string) => `chat:{${name}}:inbox`,
  room: (name: string) => `chat:{${name}}:room`,
  requestId: (name: string, tag: string, requestId: string) => `chat:{${name}}:rid:${tag}:${requestId}`,
};

/** The directory's keys and channel. */
export const directoryKeys = {
  users: "chat:{#dir}:users",
  groups: "chat:{#dir}:groups",
  nodes: "chat:{#dir}:nodes",
  lease: (node: string) => `chat:{#dir}:lease:${node}`,
  nodeUsers: (node: string) => `chat:{#dir}:node:${node}`,
  presence: "chat:{#dir}:presence",
};

/** The shard channel on which a node hears other nodes' answers to its requests, tagged with the node's id (no name can be that either). */
export const repliesChannel = (node: string) => `chat:{#node:${node}}:replies`;

/** What a shard channel this code subscribes to carries, and for which name. */
export type ChannelOwner = { kind: "inbox" | "room"; name: string } | { kind: "presence" } | { kind: "replies" };

/** Reads a channel's name back; undefined for one this code does not use. */
export function ownerOf(channel: string): ChannelOwner | undefined {
  if (channel === directoryKeys.presence) return { kind: "presence" };
  const open = channel.indexOf("{");
  const close = channel.indexOf("}:", open);
  if (!channel.startsWith("chat:") || open !== 5 || close < 0) return undefined;
  const name = channel.slice(open + 1, close);
  const suffix = channel.slice(close + 2);
  if (suffix === "inbox" || suffix === "room") return { kind: suffix, name };
  if (suffix === "replies") return { kind: "replies" };
  return undefined;
}
