import type { ChatCommands } from "./redis-link.js";

/**
 * The Lua scripts that change the shared state (keys: see redis-keys.ts).
 * Each one touches the keys of ONE name (one hash tag, so one slot of a
 * Redis Cluster), and Redis runs it alone: a claim on a name, a group's
 * membership and its sequence, a user's record change atomically. An
 * operation that spans names (a join touches the user's list of groups and
 * the group's members) is split by the backend into such steps, ordered so
 * that what a reader sees in between is safe (see docs/cluster.md).
 *
 * A group's messages and membership events are published by these scripts
 * to the group's shard channel (its "room"), numbered by the group's
 * sequence: every node that holds a member is subscribed and sees them in
 * the one order Redis ran the scripts in, and a gap in the numbers tells a
 * node it missed one. A user's direct messages go to its "inbox" channel,
 * numbered likewise, which the node holding the user subscribes to. Each
 * claim has an epoch, new at every claim, carried in every publication, so
 * that a node tells a later user or group of the same name from an earlier.
 *
 * Publications are `<kind><seq>|<epoch>|<fields...>`, the last field free
 * text (see delivery.ts). Each script answers a short status word (or a
 * list starting with one) that the backend maps to a ChatError.
 */

/** Shared: the names of a name's keys, as redis-keys.ts spells them. */
const keysOf = `
local function k(name, suffix) return 'chat:{' .. name .. '}:' .. suffix end
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username, "reclaim" to take the
 * name from a group that holds it, the SHA-256 of the session's resume
 * token (empty when it has none), the new claim's epoch. Answers { 'ok',
 * epoch, members... } with the epoch and members of a group it deleted to
 * take its name (an empty epoch and no members when there was none),
 * 'held:<grace ms>' when the name is held for a dropped session, or a
 * status.
 */
const connectScript = `${keysOf}
local node, u, reclaim, token_hash, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local user = k(u, 'user')
if redis.call('EXISTS', user) == 1 then
  local grace = redis.call('HGET', user, 'held')
  if grace then return { 'held:' .. grace } end
  return { 'user-exists' }
end
local answer = { 'ok', '' }
local group = k(u, 'group')
if redis.call('EXISTS', group) == 1 then
  if reclaim ~= 'reclaim' then return { 'group-exists' } end
  local seq = redis.call('HINCRBY', group, 'seq', 1)
  answer[2] = redis.call('HGET', group, 'epoch')
  -- Each member hears of its own leaving: the group is gone for all.
  redis.call('SPUBLISH', k(u, 'room'), 'd' .. seq .. '|' .. answer[2] .. '|')
  for _, m in ipairs(redis.call('HKEYS', k(u, 'members'))) do table.insert(answer, m) end
  redis.call('DEL', group, k(u, 'members'))
end
redis.call('HSET', user, 'node', node, 'hash', token_hash, 'epoch', epoch, 'seq', 0)
return answer
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username. The first step of
 * releasing a user: only the node that holds the name may. A user in no
 * group is released at once ({ 'gone', epoch }); otherwise the claim is
 * marked leaving (no join is let in any more) and { 'leaving', epoch,
 * groups... } tells the backend which groups to leave before it drops the
 * claim.
 */
const releaseScript = `${keysOf}
local node, u = ARGV[1], ARGV[2]
local user, groups = k(u, 'user'), k(u, 'groups')
if redis.call('HGET', user, 'node') ~= node then return { 'not-held' } end
local epoch = redis.call('HGET', user, 'epoch')
if redis.call('SCARD', groups) == 0 then
  redis.call('DEL', user)
  return { 'gone', epoch }
end
redis.call('HSET', user, 'leaving', '1')
local answer = redis.call('SMEMBERS', groups)
table.insert(answer, 1, epoch)
table.insert(answer, 1, 'leaving')
return answer
`;

/** KEYS[1]: the user's claim. ARGV: node, username. The last step of releasing a user, once it left its groups. */
const dropScript = `${keysOf}
local node, u = ARGV[1], ARGV[2]
if redis.call('HGET', k(u, 'user'), 'node') ~= node then return 'not-held' end
redis.call('DEL', k(u, 'user'), k(u, 'groups'))
return 'ok'
`;

/** KEYS[1]: the user's claim. ARGV: node, username, grace in ms. Marks the name held for a dropped session; only its node may. */
const holdScript = `${keysOf}
local node, u, grace = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', k(u, 'user'), 'node') ~= node then return 'not-held' end
redis.call('HSET', k(u, 'user'), 'held', grace)
return 'ok'
`;

/** KEYS[1]: the user's claim. ARGV: node, username. A held session was resumed on its node: the name is no longer held. */
const resumedScript = `${keysOf}
local node, u = ARGV[1], ARGV[2]
if redis.call('HGET', k(u, 'user'), 'node') ~= node then return 'not-held' end
redis.call('HDEL', k(u, 'user'), 'held')
return 'ok'
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username, SHA-256 of the token
 * presented, SHA-256 of the new session's token, the new claim's epoch. A
 * client resumes on a node other than the one holding its session: when
 * the token's hash matches, the old session is told (on the inbox, under
 * its epoch) to end without touching Redis, and the claim moves here with a
 * new epoch. Answers { 'ok', old node, groups... }: the backend then has the
 * user leave those groups, as by a disconnect. Comparing hashes, not
 * tokens, leaks nothing usable through the comparison's timing.
 */
const takeoverScript = `${keysOf}
local node, u, token_hash, new_hash, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local user, groups = k(u, 'user'), k(u, 'groups')
local old = redis.call('HGET', user, 'node')
if not old or old == node or redis.call('HGET', user, 'leaving') or redis.call('HGET', user, 'hash') ~= token_hash then return { 'no-session' } end
redis.call('SPUBLISH', k(u, 'inbox'), 'e0|' .. redis.call('HGET', user, 'epoch') .. '|' .. token_hash)
local answer = redis.call('SMEMBERS', groups)
table.insert(answer, 1, old)
table.insert(answer, 1, 'ok')
redis.call('DEL', user, groups)
redis.call('HSET', user, 'node', node, 'hash', new_hash, 'epoch', epoch, 'seq', 0)
return answer
`;

/**
 * KEYS[1]: the user's claim. ARGV: username, group, most groups per user,
 * and, to tell the user's node (on its inbox) that it is joining, "<node
 * that asks>|<request id>" (empty when the user is on the node that asks):
 * the first step of a create or join, made on the user's side. Answers 'added:' or
 * 'listed:' (the group was already on the user's list) followed by the
 * epoch of the user's claim, or a status.
 */
const enterScript = `${keysOf}
local u, g, max, notice = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local user, groups = k(u, 'user'), k(u, 'groups')
if redis.call('EXISTS', user) == 0 or redis.call('HEXISTS', user, 'leaving') == 1 then return 'not-signed-in' end
local epoch = redis.call('HGET', user, 'epoch')
local word = 'listed:'
if redis.call('SISMEMBER', groups, g) == 0 then
  if redis.call('SCARD', groups) >= max then return 'limit' end
  redis.call('SADD', groups, g)
  word = 'added:'
end
if notice ~= '' then redis.call('SPUBLISH', k(u, 'inbox'), 'n0|' .. epoch .. '|' .. notice .. '|' .. g) end
return word .. epoch
`;

/**
 * KEYS[1]: the group's claim. ARGV: group, creator, the new claim's epoch,
 * the epoch of the creator's claim. Creates the group with its creator as
 * first member, who hears of its own joining first. A joining names the
 * joiner's claim, so that its node tells the session that joined from a
 * later one of the same name.
 */
const createScript = `${keysOf}
local g, u, epoch, user_epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', k(g, 'user')) == 1 then return 'user-exists' end
if redis.call('EXISTS', k(g, 'group')) == 1 then return 'group-exists' end
redis.call('HSET', k(g, 'group'), 'epoch', epoch, 'seq', 1)
redis.call('HSET', k(g, 'members'), u, 1)
redis.call('SPUBLISH', k(g, 'room'), 'j1|' .. epoch .. '|' .. u .. '|' .. user_epoch)
return 'ok'
`;

/** KEYS[1]: the group's claim. ARGV: group, username, the epoch of the user's claim. The joiner hears of its own joining first. */
const joinScript = `${keysOf}
local g, u, user_epoch = ARGV[1], ARGV[2], ARGV[3]
local group, members = k(g, 'group'), k(g, 'members')
if redis.call('EXISTS', group) == 0 then return 'not-found' end
if redis.call('HEXISTS', members, u) == 1 then return 'member' end
local seq = redis.call('HINCRBY', group, 'seq', 1)
redis.call('HSET', members, u, seq)
redis.call('SPUBLISH', k(g, 'room'), 'j' .. seq .. '|' .. redis.call('HGET', group, 'epoch') .. '|' .. u .. '|' .. user_epoch)
return 'ok'
`;

/**
 * KEYS[1]: the group's claim. ARGV: group, username, the leave reason and
 * its words. The leaver hears of its own leaving, before it is gone; the
 * last member's leaving deletes the group ('deleted:<its epoch>').
 */
const leaveScript = `${keysOf}
local g, u, reason, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local group, members = k(g, 'group'), k(g, 'members')
if redis.call('EXISTS', group) == 0 then return 'not-found' end
if redis.call('HEXISTS', members, u) == 0 then return 'not-member' end
local seq = redis.call('HINCRBY', group, 'seq', 1)
redis.call('SPUBLISH', k(g, 'room'), 'l' .. seq .. '|' .. redis.call('HGET', group, 'epoch') .. '|' .. u .. '|' .. reason .. '|' .. detail)
redis.call('HDEL', members, u)
if redis.call('HLEN', members) == 0 then
  local epoch = redis.call('HGET', group, 'epoch')
  redis.call('DEL', group, members)
  return 'deleted:' .. epoch
end
return 'ok'
`;

/** KEYS[1]: the group's claim. ARGV: group, caller. Answers { 'ok', members... }, or { status }. */
const membersScript = `${keysOf}
local g, u = ARGV[1], ARGV[2]
if redis.call('EXISTS', k(g, 'group')) == 0 then return { 'not-found' } end
if redis.call('HEXISTS', k(g, 'members'), u) == 0 then return { 'not-member' } end
local answer = redis.call('HKEYS', k(g, 'members'))
table.insert(answer, 1, 'ok')
return answer
`;

/**
 * KEYS[1]: the channel's user claim. ARGV: channel, sender, the message's
 * fields as the publication carries them (id|sender|sent-at|text). Publishes
 * the message on the user's inbox or the group's room, numbered, and
 * answers 'user' or 'group' for the channel's type, or a status. A sender
 * must be a member of a group it sends to; that a sender of a direct
 * message is signed in is the backend's check.
 */
const sendScript = `${keysOf}
local ch, sender, fields = ARGV[1], ARGV[2], ARGV[3]
local user = k(ch, 'user')
local epoch = redis.call('HGET', user, 'epoch')
if epoch then
  local seq = redis.call('HINCRBY', user, 'seq', 1)
  redis.call('SPUBLISH', k(ch, 'inbox'), 'm' .. seq .. '|' .. epoch .. '|' .. fields)
  return 'user'
end
local group = k(ch, 'group')
epoch = redis.call('HGET', group, 'epoch')
if not epoch then return 'not-found' end
if redis.call('HEXISTS', k(ch, 'members'), sender) == 0 then return 'not-allowed' end
local seq = redis.call('HINCRBY', group, 'seq', 1)
redis.call('SPUBLISH', k(ch, 'room'), 'm' .. seq .. '|' .. epoch .. '|' .. fields)
return 'group'
`;

/**
 * KEYS[1]: the directory. ARGV: node, "1" to publish the changes as
 * presence, then quadruples of "+" or "-", "user" or "group", name, the
 * claim's epoch. Lists and unlists names after their claim changed (a user
 * also on its node's list, for the sweep), and publishes the changes on the
 * presence channel. The directory maps each name to the epoch of the claim
 * that listed it: an unlisting that comes late, after another node claimed
 * the name anew and listed it, leaves the new listing be.
 */
const directoryScript = `
local node, presence = ARGV[1], ARGV[2]
local changes = {}
for i = 3, #ARGV, 4 do
  local on, kind, name, epoch = ARGV[i] == '+', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local set = kind == 'user' and 'chat:{#dir}:users' or 'chat:{#dir}:groups'
  local changed = false
  if on then
    redis.call('HSET', set, name, epoch)
    changed = true
  elseif redis.call('HGET', set, name) == epoch then
    redis.call('HDEL', set, name)
    changed = true
  end
  if kind == 'user' then
    if on then redis.call('SADD', 'chat:{#dir}:node:' .. node, name) else redis.call('SREM', 'chat:{#dir}:node:' .. node, name) end
  end
  if changed then table.insert(changes, { type = kind, name = name, present = on }) end
end
if presence == '1' and #changes > 0 then redis.call('SPUBLISH', 'chat:{#dir}:presence', cjson.encode({ changes = changes })) end
return 'ok'
`;

/**
 * KEYS[1]: the directory. ARGV: node, sweeper, the sweep's lock time in ms.
 * A node whose lease ran out: answers { 'dead', users... } with the users
 * it held, to be released by the sweeper that took the lock; 'alive',
 * 'busy' (another node sweeps it) or 'done' (nothing left: forgotten).
 */
const sweepScript = `
local node, sweeper, lock_ms = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', 'chat:{#dir}:lease:' .. node) == 1 then return { 'alive' } end
local users = redis.call('SMEMBERS', 'chat:{#dir}:node:' .. node)
if #users == 0 then
  redis.call('SREM', 'chat:{#dir}:nodes', node)
  redis.call('DEL', 'chat:{#dir}:sweep:' .. node)
  return { 'done' }
end
if not redis.call('SET', 'chat:{#dir}:sweep:' .. node, sweeper, 'NX', 'PX', lock_ms) then return { 'busy' } end
table.insert(users, 1, 'dead')
return users
`;

/** The chat's scripts, by the name of the ioredis command that runs each. */
export const scripts: Record<keyof ChatCommands, string> = {
  chatConnect: connectScript,
  chatRelease: releaseScript,
  chatDrop: dropScript,
  chatHold: holdScript,
  chatResumed: resumedScript,
  chatTakeover: takeoverScript,
  chatEnter: enterScript,
  chatCreate: createScript,
  chatJoin: joinScript,
  chatLeave: leaveScript,
  chatMembers: membersScript,
  chatSend: sendScript,
  chatDirectory: directoryScript,
  chatSweep: sweepScript,
};
