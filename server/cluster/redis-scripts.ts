import type { ChatCommands } from "./redis-node.js";

/**
 * The Lua scripts that change the shared state. Redis runs each one alone,
 * so every multi-key change is atomic across nodes, and the PUBLISHes of one
 * SEND reach every node in one global order. Keys:
 *
 * - chat:users            hash   username -> id of the node holding its session
 * - chat:node-users:<id>  set    usernames a node holds
 * - chat:groups           set    group names
 * - chat:group:<name>     set    members of a group
 * - chat:user-groups:<u>  set    groups a user is in
 * - chat:nodes            set    node ids that registered
 * - chat:lease:<id>       string expires unless its node refreshes it
 * - chat:deliver:<id>     pub/sub channel of one node's deliveries
 *
 * Each script answers with a short status word that the backend maps to a
 * ChatError.
 */

// Removes one user everywhere, or every user of a node: shared by the scripts below.
const removeUser = `
local function remove_user(u)
  redis.call('HDEL', 'chat:users', u)
  for _, g in ipairs(redis.call('SMEMBERS', 'chat:user-groups:' .. u)) do
    redis.call('SREM', 'chat:group:' .. g, u)
    if redis.call('SCARD', 'chat:group:' .. g) == 0 then
      redis.call('DEL', 'chat:group:' .. g)
      redis.call('SREM', 'chat:groups', g)
    end
  end
  redis.call('DEL', 'chat:user-groups:' .. u)
end
local function release_node(node)
  for _, u in ipairs(redis.call('SMEMBERS', 'chat:node-users:' .. node)) do
    if redis.call('HGET', 'chat:users', u) == node then remove_user(u) end
  end
  redis.call('DEL', 'chat:node-users:' .. node)
end
`;

/** ARGV: node, username, "reclaim" to take the name from a group that holds it. */
const connectScript = `
local node, u, reclaim = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', 'chat:lease:' .. node) == 0 then return 'no-lease' end
if redis.call('HEXISTS', 'chat:users', u) == 1 then return 'user-exists' end
if redis.call('SISMEMBER', 'chat:groups', u) == 1 then
  if reclaim ~= 'reclaim' then return 'group-exists' end
  for _, m in ipairs(redis.call('SMEMBERS', 'chat:group:' .. u)) do
    redis.call('SREM', 'chat:user-groups:' .. m, u)
  end
  redis.call('DEL', 'chat:group:' .. u)
  redis.call('SREM', 'chat:groups', u)
end
redis.call('HSET', 'chat:users', u, node)
redis.call('SADD', 'chat:node-users:' .. node, u)
return 'ok'
`;

/** ARGV: node, username. Only the node that holds the name may release it. */
const disconnectScript = `${removeUser}
local node, u = ARGV[1], ARGV[2]
if redis.call('HGET', 'chat:users', u) ~= node then return 'not-held' end
redis.call('SREM', 'chat:node-users:' .. node, u)
remove_user(u)
return 'ok'
`;

/** ARGV: node. Releases every user of a node whose lease ran out, and the node. */
const sweepScript = `${removeUser}
local node = ARGV[1]
if redis.call('EXISTS', 'chat:lease:' .. node) == 1 then return 'alive' end
release_node(node)
redis.call('SREM', 'chat:nodes', node)
return 'ok'
`;

/** ARGV: caller, group name, most groups per user, most groups in all. */
const createGroupScript = `
local u, g, max, maxTotal = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 1 then return 'group-exists' end
if redis.call('HEXISTS', 'chat:users', g) == 1 then return 'user-exists' end
if redis.call('SCARD', 'chat:groups') >= maxTotal then return 'limit-total' end
if redis.call('SCARD', 'chat:user-groups:' .. u) >= max then return 'limit' end
redis.call('SADD', 'chat:groups', g)
redis.call('SADD', 'chat:group:' .. g, u)
redis.call('SADD', 'chat:user-groups:' .. u, g)
return 'ok'
`;

/** ARGV: caller, group name, most groups per user. */
const joinGroupScript = `
local u, g, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 0 then return 'not-found' end
if redis.call('SISMEMBER', 'chat:group:' .. g, u) == 1 then return 'member' end
if redis.call('SCARD', 'chat:user-groups:' .. u) >= max then return 'limit' end
redis.call('SADD', 'chat:group:' .. g, u)
redis.call('SADD', 'chat:user-groups:' .. u, g)
return 'ok'
`;

/** ARGV: caller, group name. */
const leaveGroupScript = `
local u, g = ARGV[1], ARGV[2]
if redis.call('HEXISTS', 'chat:users', u) == 0 then return 'not-signed-in' end
if redis.call('SISMEMBER', 'chat:groups', g) == 0 then return 'not-found' end
if redis.call('SREM', 'chat:group:' .. g, u) == 0 then return 'not-member' end
redis.call('SREM', 'chat:user-groups:' .. u, g)
if redis.call('SCARD', 'chat:group:' .. g) == 0 then
  redis.call('DEL', 'chat:group:' .. g)
  redis.call('SREM', 'chat:groups', g)
end
return 'ok'
`;

/**
 * ARGV: caller, channel, id, text, sent-at in ms. Publishes the message to
 * each node that holds a recipient, with that node's recipients, and answers
 * 'group' or 'user' for the channel's type.
 */
const sendScript = `
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
local by_node = {}
for _, m in ipairs(members) do
  local node = redis.call('HGET', 'chat:users', m)
  if node then
    by_node[node] = by_node[node] or {}
    table.insert(by_node[node], m)
  end
end
for node, to in pairs(by_node) do
  redis.call('PUBLISH', 'chat:deliver:' .. node,
    cjson.encode({ id = id, sender = u, channel = ch, type = kind, text = text, at = tonumber(at), to = to }))
end
return kind
`;

/** ARGV: node. Releases every user of a live node, for a restart after an outage. */
const releaseNodeScript = `${removeUser}
release_node(ARGV[1])
return 'ok'
`;

/** The chat's scripts, by the name of the ioredis command that runs each. */
export const scripts: Record<keyof ChatCommands, string> = {
  chatConnect: connectScript,
  chatDisconnect: disconnectScript,
  chatSweep: sweepScript,
  chatReleaseNode: releaseNodeScript,
  chatCreateGroup: createGroupScript,
  chatJoinGroup: joinGroupScript,
  chatLeaveGroup: leaveGroupScript,
  chatSend: sendScript,
};
