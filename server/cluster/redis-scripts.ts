import type { ChatCommands } from "./redis-node.js";

/**
 * The Lua scripts that change the shared state. Redis runs each one alone,
 * so every multi-key change is atomic across nodes, and the PUBLISHes of one
 * script reach every node in one global order with those of every other:
 * a membership event published by the join script is therefore ordered with
 * the messages the send script publishes to the group. Keys:
 *
 * - chat:users            hash   username -> id of the node holding its session
 * - chat:node-users:<id>  set    usernames a node holds
 * - chat:groups           set    group names
 * - chat:group:<name>     set    members of a group
 * - chat:user-groups:<u>  set    groups a user is in
 * - chat:member-watchers  set    users that asked for membership events
 * - chat:resume           hash   username -> SHA-256 of its session's resume token (resumable sessions only)
 * - chat:held             hash   username -> the grace in ms of its dropped session, held for a resume
 * - chat:nodes            set    node ids that registered
 * - chat:lease:<id>       string expires unless its node refreshes it
 * - chat:deliver:<id>     pub/sub channel of one node's deliveries (see delivery.ts), and
 *                         the start mark of each session registered there
 * - chat:presence         pub/sub channel every node with presence on listens to
 *
 * Each script answers with a short status word that the backend maps to a
 * ChatError.
 */

/**
 * Shared by the scripts below: membership events, presence changes, and the
 * removal of a user. A membership event is published only to the nodes of
 * the members that asked for them (SINTER with chat:member-watchers), so a
 * change costs O(members) at most and nothing when nobody watches.
 */
const helpers = `
local presence = {}
local function present(kind, name, on)
  table.insert(presence, { type = kind, name = name, present = on })
end
local function flush_presence()
  if #presence > 0 then redis.call('PUBLISH', 'chat:presence', cjson.encode({ changes = presence })) end
end
local function publish_to(event, names)
  local by_node = {}
  for _, m in ipairs(names) do
    local node = redis.call('HGET', 'chat:users', m)
    if node then
      by_node[node] = by_node[node] or {}
      table.insert(by_node[node], m)
    end
  end
  for node, to in pairs(by_node) do
    event.to = to
    redis.call('PUBLISH', 'chat:deliver:' .. node, cjson.encode(event))
  end
end
local function notify_group(g, kind, u, reason, detail)
  local watchers = redis.call('SINTER', 'chat:group:' .. g, 'chat:member-watchers')
  if #watchers > 0 then
    publish_to({ kind = kind, group = g, user = u, reason = reason, detail = detail }, watchers)
  end
end
local function register(u, node, token_hash, membership)
  redis.call('HSET', 'chat:users', u, node)
  redis.call('SADD', 'chat:node-users:' .. node, u)
  if token_hash ~= '' then redis.call('HSET', 'chat:resume', u, token_hash) end
  if membership == '1' then redis.call('SADD', 'chat:member-watchers', u) end
  -- In the node's one order: what was published for the name before this mark was for an earlier session.
  redis.call('PUBLISH', 'chat:deliver:' .. node, cjson.encode({ kind = 'start', user = u, hash = token_hash }))
end
local function remove_user(u, reason, detail, announce)
  redis.call('HDEL', 'chat:users', u)
  redis.call('HDEL', 'chat:resume', u)
  redis.call('HDEL', 'chat:held', u)
  redis.call('SREM', 'chat:member-watchers', u)
  if announce then present('user', u, false) end
  for _, g in ipairs(redis.call('SMEMBERS', 'chat:user-groups:' .. u)) do
    redis.call('SREM', 'chat:group:' .. g, u)
    if redis.call('SCARD', 'chat:group:' .. g) == 0 then
      redis.call('DEL', 'chat:group:' .. g)
      redis.call('SREM', 'chat:groups', g)
      present('group', g, false)
    else
      notify_group(g, 'member-left', u, reason, detail)
    end
  end
  redis.call('DEL', 'chat:user-groups:' .. u)
end
local function release_node(node, detail)
  for _, u in ipairs(redis.call('SMEMBERS', 'chat:node-users:' .. node)) do
    if redis.call('HGET', 'chat:users', u) == node then remove_user(u, 'disconnected', detail, true) end
  end
  redis.call('DEL', 'chat:node-users:' .. node)
end
`;

/**
 * ARGV: node, username, "reclaim" to take the name from a group that holds
 * it, the SHA-256 of the session's resume token (empty when it has none),
 * "1" when it asked for membership events. Answers 'held:<grace ms>' when
 * the name is held for a dropped session.
 */
const connectScript = `${helpers}
local node, u, reclaim, token_hash, membership = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', 'chat:lease:' .. node) == 0 then return 'no-lease' end
if redis.call('HEXISTS', 'chat:users', u) == 1 then
  local grace = redis.call('HGET', 'chat:held', u)
  if grace then return 'held:' .. grace end
  return 'user-exists'
end
if redis.call('SISMEMBER', 'chat:groups', u) == 1 then
  if reclaim ~= 'reclaim' then return 'group-exists' end
  local watchers = redis.call('SINTER', 'chat:group:' .. u, 'chat:member-watchers')
  for _, m in ipairs(redis.call('SMEMBERS', 'chat:group:' .. u)) do
    redis.call('SREM', 'chat:user-groups:' .. m, u)
  end
  redis.call('DEL', 'chat:group:' .. u)
  redis.call('SREM', 'chat:groups', u)
  present('group', u, false)
  -- No user: each former member hears of its own leaving, the group being gone for all.
  if #watchers > 0 then publish_to({ kind = 'member-left', group = u, reason = 'group-deleted', detail = '' }, watchers) end
end
register(u, node, token_hash, membership)
present('user', u, true)
flush_presence()
return 'ok'
`;

/**
 * ARGV: node, username, the leave reason and its words for the members it
 * leaves. Only the node that holds the name may release it.
 */
const disconnectScript = `${helpers}
local node, u, reason, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', 'chat:users', u) ~= node then return 'not-held' end
redis.call('SREM', 'chat:node-users:' .. node, u)
remove_user(u, reason, detail, true)
flush_presence()
return 'ok'
`;

/** ARGV: node, the words for the members its users leave. Releases every user of a node whose lease ran out, and the node. */
const sweepScript = `${helpers}
local node, detail = ARGV[1], ARGV[2]
if redis.call('EXISTS', 'chat:lease:' .. node) == 1 then return 'alive' end
release_node(node, detail)
redis.call('SREM', 'chat:nodes', node)
flush_presence()
return 'ok'
`;

/** ARGV: node, the words for the members its users leave. Releases every user of a live node, for a restart after an outage or a shutdown. */
const releaseNodeScript = `${helpers}
release_node(ARGV[1], ARGV[2])
flush_presence()
return 'ok'
`;

/**
 * ARGV: node, username, grace in ms. Marks the name held for a dropped
 * session, so that a connect anywhere says so; only its node may.
 */
const holdScript = `
local node, u, grace = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', 'chat:users', u) ~= node then return 'not-held' end
redis.call('HSET', 'chat:held', u, grace)
return 'ok'
`;

/**
 * ARGV: node, username, "1" when the resumed stream asked for membership
 * events. A held session was resumed on its node: the name is no longer held.
 */
const resumedScript = `
local node, u, membership = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', 'chat:users', u) ~= node then return 'not-held' end
redis.call('HDEL', 'chat:held', u)
if membership == '1' then redis.call('SADD', 'chat:member-watchers', u)
else redis.call('SREM', 'chat:member-watchers', u) end
return 'ok'
`;

/**
 * ARGV: node, username, SHA-256 of the token presented, SHA-256 of the new
 * session's token, "1" for membership events, the words for the members it
 * leaves. A client resumes on a node other than the one holding its
 * session: when the token's hash matches, the user leaves everything as by
 * a disconnect (without going offline: it comes back here at once), the
 * old node is told to end its session without touching Redis, and the name
 * is registered for a fresh session on this node. Comparing hashes, not
 * tokens, leaks nothing usable through the comparison's timing.
 */
const takeoverScript = `${helpers}
local node, u, token_hash, new_hash, membership, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('EXISTS', 'chat:lease:' .. node) == 0 then return 'no-lease' end
local old = redis.call('HGET', 'chat:users', u)
if not old or old == node or redis.call('HGET', 'chat:resume', u) ~= token_hash then return 'no-session' end
redis.call('SREM', 'chat:node-users:' .. old, u)
remove_user(u, 'disconnected', detail, false)
redis.call('PUBLISH', 'chat:deliver:' .. old, cjson.encode({ kind = 'end', user = u, hash = token_hash }))
register(u, node, new_hash, membership)
flush_presence()
return 'ok'
`;

/** ARGV: caller, group name, most groups per user, most groups in all. */
const createGroupScript = `${helpers}
local u, g, max, maxTotal = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 1 then return 'group-exists' end
if redis.call('HEXISTS', 'chat:users', g) == 1 then return 'user-exists' end
if redis.call('SCARD', 'chat:groups') >= maxTotal then return 'limit-total' end
if redis.call('SCARD', 'chat:user-groups:' .. u) >= max then return 'limit' end
redis.call('SADD', 'chat:groups', g)
redis.call('SADD', 'chat:group:' .. g, u)
redis.call('SADD', 'chat:user-groups:' .. u, g)
present('group', g, true)
notify_group(g, 'member-joined', u)
flush_presence()
return 'ok'
`;

/** ARGV: caller, group name, most groups per user. The joiner hears of its own joining first. */
const joinGroupScript = `${helpers}
local u, g, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 0 then return 'not-found' end
if redis.call('SISMEMBER', 'chat:group:' .. g, u) == 1 then return 'member' end
if redis.call('SCARD', 'chat:user-groups:' .. u) >= max then return 'limit' end
redis.call('SADD', 'chat:group:' .. g, u)
redis.call('SADD', 'chat:user-groups:' .. u, g)
notify_group(g, 'member-joined', u)
return 'ok'
`;

/** ARGV: caller, group name. The leaver hears of its own leaving, before it is gone. */
const leaveGroupScript = `${helpers}
local u, g = ARGV[1], ARGV[2]
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 0 then return 'not-found' end
if redis.call('SISMEMBER', 'chat:group:' .. g, u) == 0 then return 'not-member' end
notify_group(g, 'member-left', u, 'left', '')
redis.call('SREM', 'chat:group:' .. g, u)
redis.call('SREM', 'chat:user-groups:' .. u, g)
if redis.call('SCARD', 'chat:group:' .. g) == 0 then
  redis.call('DEL', 'chat:group:' .. g)
  redis.call('SREM', 'chat:groups', g)
  present('group', g, false)
end
flush_presence()
return 'ok'
`;

/**
 * ARGV: caller, group name. Answers { 'ok', members... }, or { status } for
 * a caller not signed in, no such group, or a caller not in it.
 */
const listMembersScript = `
local u, g = ARGV[1], ARGV[2]
if redis.call('HEXISTS', 'chat:users', u) == 0 then return { 'not-signed-in' } end
if redis.call('SISMEMBER', 'chat:groups', g) == 0 then return { 'not-found' } end
if redis.call('SISMEMBER', 'chat:group:' .. g, u) == 0 then return { 'not-member' } end
local answer = redis.call('SMEMBERS', 'chat:group:' .. g)
table.insert(answer, 1, 'ok')
return answer
`;

/**
 * ARGV: caller, channel, id, text, sent-at in ms. Publishes the message to
 * each node that holds a recipient, with that node's recipients, and answers
 * 'group' or 'user' for the channel's type. Its payload carries no kind
 * (a payload without one is a message): the fan-out path is byte for byte
 * what it was before membership events existed.
 */
const sendScript = `${helpers}
local u, ch, id, text, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
local kind, members
if redis.call('SISMEMBER', 'chat:groups', ch) == 1 then
  if redis.call('SISMEMBER', 'chat:group:' .. ch, u) == 0 then return 'not-allowed' end
  kind, members = 'group', redis.call('SMEMBERS', 'chat:group:' .. ch)
elseif redis.call('HEXISTS', 'chat:users', ch) == 1 then
  kind, members = 'user', { ch }
else
  return 'not-found'
end
publish_to({ id = id, sender = u, channel = ch, type = kind, text = text, at = tonumber(at) }, members)
return kind
`;

/** The chat's scripts, by the name of the ioredis command that runs each. */
export const scripts: Record<keyof ChatCommands, string> = {
  chatConnect: connectScript,
  chatDisconnect: disconnectScript,
  chatSweep: sweepScript,
  chatReleaseNode: releaseNodeScript,
  chatHold: holdScript,
  chatResumed: resumedScript,
  chatTakeover: takeoverScript,
  chatCreateGroup: createGroupScript,
  chatJoinGroup: joinGroupScript,
  chatLeaveGroup: leaveGroupScript,
  chatListMembers: listMembersScript,
  chatSend: sendScript,
};
