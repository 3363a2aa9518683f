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
 * Shared: a channel's history is a stream of entries { m = the message's
 * fields, s = its size as the queues count it }, whose ids are the time of
 * Redis in microseconds, with its total size in
 * "<stream>:bytes"; both expire after the retention unless written again.
 * keep() appends one and then drops the oldest while the stream is over its
 * count or its bytes, or the oldest is older than the retention; every
 * bound is exact, which MAXLEN ~ could not be for bytes.
 */
const historyOf = `
local function forget_history(hist) redis.call('DEL', hist, hist .. ':bytes') end
local function forget_direct(u, keep_direct)
  if keep_direct == 'keep' then return end
  for _, hist in ipairs(redis.call('SMEMBERS', k(u, 'dms'))) do forget_history(hist) end
  redis.call('DEL', k(u, 'dms'))
end
local function keep(hist, fields, size, maxn, maxb, ttl)
  -- Ids in microseconds, not XADD's milliseconds: one Redis runs one script at a time, so the two
  -- directions of a pair, kept in two streams, merge in the order they ran.
  local now = redis.call('TIME')
  local us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local id = redis.pcall('XADD', hist, string.format('%d-*', us), 'm', fields, 's', size)
  if type(id) == 'table' and id.err then
    -- The clock went back: stay after the newest entry.
    local top = redis.call('XREVRANGE', hist, '+', '-', 'COUNT', 1)[1][1]
    id = redis.call('XADD', hist, string.match(top, '^(%d+)') .. '-*', 'm', fields, 's', size)
  end
  local oldest_us = tonumber(string.match(id, '^(%d+)')) - ttl * 1000
  local bytes = redis.call('INCRBY', hist .. ':bytes', size)
  while true do
    local first = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)[1]
    if not first then break end
    if redis.call('XLEN', hist) <= maxn and bytes <= maxb and tonumber(string.match(first[1], '^(%d+)')) >= oldest_us then break end
    bytes = redis.call('DECRBY', hist .. ':bytes', tonumber(first[2][4]))
    redis.call('XDEL', hist, first[1])
  end
  redis.call('PEXPIRE', hist, ttl)
  redis.call('PEXPIRE', hist .. ':bytes', ttl)
end
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username, "reclaim" to take the
 * name from a group that holds it, the SHA-256 of the session's resume
 * token (empty when it has none), the new claim's epoch, the person's tag
 * (which names its direct-message histories, and which a takeover keeps).
 * Answers { 'ok',
 * epoch, members... } with the epoch and members of a group it deleted to
 * take its name (an empty epoch and no members when there was none),
 * 'held:<grace ms>' when the name is held for a dropped session, or a
 * status.
 */
const connectScript = `${keysOf}${historyOf}
local node, u, reclaim, token_hash, epoch, who = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
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
  forget_history(k(u, 'history'))
end
redis.call('HSET', user, 'node', node, 'hash', token_hash, 'epoch', epoch, 'seq', 0, 'who', who)
return answer
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username, "keep" when names are
 * signed identities (see dropScript). The first step of releasing a user:
 * only the node that holds the name may. A user in no group is released at
 * once ({ 'gone', epoch }), as by dropScript; otherwise the claim is
 * marked leaving (no join is let in any more) and { 'leaving', epoch,
 * groups... } tells the backend which groups to leave before it drops the
 * claim.
 */
const releaseScript = `${keysOf}${historyOf}
local node, u, keep_direct = ARGV[1], ARGV[2], ARGV[3]
local user, groups = k(u, 'user'), k(u, 'groups')
if redis.call('HGET', user, 'node') ~= node then return { 'not-held' } end
local epoch = redis.call('HGET', user, 'epoch')
if redis.call('SCARD', groups) == 0 then
  redis.call('DEL', user)
  forget_direct(u, keep_direct)
  return { 'gone', epoch }
end
redis.call('HSET', user, 'leaving', '1')
local answer = redis.call('SMEMBERS', groups)
table.insert(answer, 1, epoch)
table.insert(answer, 1, 'leaving')
return answer
`;

/**
 * KEYS[1]: the user's claim. ARGV: node, username, "keep" when names are
 * signed identities. The last step of releasing a user, once it left its
 * groups. Without signed identities the name passes to whoever connects
 * next, so the direct messages the user received go too: those it sent
 * are under its tag, which no later user of the name has.
 */
const dropScript = `${keysOf}${historyOf}
local node, u, keep_direct = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', k(u, 'user'), 'node') ~= node then return 'not-held' end
redis.call('DEL', k(u, 'user'), k(u, 'groups'))
forget_direct(u, keep_direct)
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
local who = redis.call('HGET', user, 'who') or ''
local answer = redis.call('SMEMBERS', groups)
table.insert(answer, 1, who)
table.insert(answer, 1, old)
table.insert(answer, 1, 'ok')
redis.call('DEL', user, groups)
redis.call('HSET', user, 'node', node, 'hash', new_hash, 'epoch', epoch, 'seq', 0, 'who', who)
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
 * last member's leaving deletes the group ('deleted:<its epoch>') and its
 * history.
 */
const leaveScript = `${keysOf}${historyOf}
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
  forget_history(k(g, 'history'))
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
 * fields as the publication carries them (id|sender|sent-at|text), the
 * sender's tag, the message's size as the queues count it, the history's
 * bounds (messages, bytes, retention in ms; 0 messages keeps none), the
 * request id ("" for none), the deduplication window in ms and the text's
 * digest. Publishes
 * the message on the user's inbox or the group's room, numbered, and keeps
 * it in the channel's history in the same step: a message is delivered if
 * and only if it is kept. A direct message is kept in the recipient's slot
 * under the sender's name and tag (the pair's history is the two
 * directions together). Answers 'user' or 'group' for the channel's type,
 * 'sent:<id>|<sent-at>|<type>' for a request id this channel already took
 * from this sender with this text (nothing is sent again), 'reused:' for
 * one it took with another text, or a status. A sender must be
 * a member of a group it sends to; that a sender of a direct message is
 * signed in is the backend's check.
 */
const sendScript = `${keysOf}${historyOf}
local ch, sender, fields, tag, size = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local maxn, maxb, ttl, rid, window, digest = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10]), ARGV[11]
local sent = nil
if rid ~= '' and window > 0 then
  sent = k(ch, 'sent:' .. sender .. ':' .. tag .. ':' .. rid)
  local first = redis.call('GET', sent)
  if first then
    local id, at, kind, first_digest = string.match(first, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
    if first_digest ~= digest then return 'reused:' end
    return 'sent:' .. id .. '|' .. at .. '|' .. kind
  end
end
local kind, hist
local user = k(ch, 'user')
local epoch = redis.call('HGET', user, 'epoch')
if epoch then
  local seq = redis.call('HINCRBY', user, 'seq', 1)
  redis.call('SPUBLISH', k(ch, 'inbox'), 'm' .. seq .. '|' .. epoch .. '|' .. fields)
  kind, hist = 'user', k(ch, 'dm:' .. sender .. ':' .. tag)
  if maxn > 0 then
    redis.call('SADD', k(ch, 'dms'), hist)
    redis.call('PEXPIRE', k(ch, 'dms'), ttl)
  end
else
  local group = k(ch, 'group')
  epoch = redis.call('HGET', group, 'epoch')
  if not epoch then return 'not-found' end
  if redis.call('HEXISTS', k(ch, 'members'), sender) == 0 then return 'not-allowed' end
  local seq = redis.call('HINCRBY', group, 'seq', 1)
  redis.call('SPUBLISH', k(ch, 'room'), 'm' .. seq .. '|' .. epoch .. '|' .. fields)
  kind, hist = 'group', k(ch, 'history')
end
if maxn > 0 then keep(hist, fields, size, maxn, maxb, ttl) end
if sent then
  local id, at = string.match(fields, '^([^|]*)|[^|]*|([^|]*)|')
  redis.call('SET', sent, id .. '|' .. at .. '|' .. kind .. '|' .. digest, 'PX', window)
end
return kind
`;

/**
 * KEYS[1]: the sender's claim. ARGV: sender, request id, channel, digest
 * of the text, window in ms, and "s" when names are signed identities. The
 * first step of a send with a request id, in the sender's slot: a request
 * id is bound to one channel and text for the window, so that its reuse
 * for another message is refused, whichever node and channel the retry
 * goes to. Request ids are a person's: under its tag, or "s" for a signed
 * name, so that a later user of an unsigned name inherits none. Answers 'new:<the sender's tag>'
 * when it bound the id now, 'ok:<tag>' when it was bound to this message
 * already, 'reused:<channel>' or 'not-signed-in'.
 */
const requestScript = `${keysOf}
local u, rid, ch, digest, window, scope = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local who = redis.call('HGET', k(u, 'user'), 'who')
if not who then return 'not-signed-in' end
local key = k(u, 'rid:' .. (scope ~= '' and scope or who) .. ':' .. rid)
local first = redis.call('GET', key)
if first and first ~= ch .. '|' .. digest then return 'reused:' .. string.match(first, '^([^|]*)') end
if first then return 'ok:' .. who end
redis.call('SET', key, ch .. '|' .. digest, 'PX', window)
return 'new:' .. who
`;

/**
 * KEYS[1]: a key of the name whose slot is read. ARGV: "auto" or "direct",
 * the name, the caller, the tag of the caller (auto) or of the name's
 * correspondent (direct), the end of the range (XREVRANGE's: "+" or
 * "(<id>"), the count, and "online" when the name must be a user online.
 * "auto": the name is a group (the caller must be a member: answers
 * { 'group', '', id, fields, ... } newest first) or a user (answers
 * { 'user', its tag, ... } with the messages the caller sent it). "direct":
 * the messages the correspondent (ARGV[2]) sent the caller, kept in the
 * caller's slot: ARGV[2] is the caller there, and ARGV[3] the sender.
 */
const historyScript = `${keysOf}
local mode, name, other, tag, upto, count, check = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local answer, hist
if mode == 'auto' and redis.call('EXISTS', k(name, 'group')) == 1 then
  if redis.call('HEXISTS', k(name, 'members'), other) == 0 then return { 'not-member' } end
  answer, hist = { 'group', '' }, k(name, 'history')
else
  local who = redis.call('HGET', k(name, 'user'), 'who')
  if check == 'online' and not who then return { 'not-found' } end
  answer, hist = { 'user', who or '' }, k(name, 'dm:' .. other .. ':' .. tag)
end
for _, e in ipairs(redis.call('XREVRANGE', hist, upto, '-', 'COUNT', count)) do
  table.insert(answer, e[1])
  table.insert(answer, e[2][2])
end
return answer
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
  chatRequest: requestScript,
  chatHistory: historyScript,
  chatDirectory: directoryScript,
  chatSweep: sweepScript,
};
