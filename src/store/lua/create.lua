-- Creates a session. KEYS: [1] the new session, [2] the user's index, [3] the user agent (or the
-- index again when there is none), [4] the partition's events, then [5..] the user's current
-- sessions as the caller read the index, in the order of `a.hashes`.
-- ARGV[1]: { now, hash, idle, expires, version, perms, head, tail, ua, userTtl, maxlen, event,
-- hashes (the index as read), evict (of those, the sessions to end: over the cap, oldest first),
-- evictEvent (or false) }.
-- Returns the permission mask of the new session; false when the account was closed after the
-- login read it (the index's `c` is newer than the version read); -2 when the index changed since
-- the caller read it.
local a = cjson.decode(ARGV[1])
if not indexIs(KEYS[2], set(a.hashes)) then return -2 end
local meta = redis.call('HMGET', KEYS[2], 'v', 'p', 'c')
local version, storedPerms, openFrom = tonumber(meta[1]), meta[2], tonumber(meta[3])
-- Disabled, deleted or given a new password after this login read the user: no session.
if openFrom and a.version < openFrom then return false end
-- Entries whose session ended (idled out or reached its absolute expiry) are pruned here.
local evict = set(a.evict)
for i, h in ipairs(a.hashes) do
  local key = KEYS[4 + i]
  if evict[h] then
    redis.call('DEL', key)
    redis.call('HDEL', KEYS[2], h)
  elseif redis.call('EXISTS', key) == 0 then
    redis.call('HDEL', KEYS[2], h)
  end
end
-- A permission set written by a later grant or revoke wins over the one read at login.
local perms = a.perms
local newer = version and version > a.version
if newer then perms = storedPerms end
redis.call('SET', KEYS[1], a.head .. perms .. a.tail, 'PX', ms(math.max(1, math.min(a.idle, a.expires - a.now))))
if newer then redis.call('HSET', KEYS[2], a.hash, '')
else redis.call('HSET', KEYS[2], a.hash, '', 'v', a.version, 'p', a.perms) end
-- The index outlives every session it lists: none expires later than the one made now.
extend(KEYS[2], a.userTtl)
if a.ua ~= '' then redis.call('SET', KEYS[3], a.ua, 'PX', ms(a.userTtl)) end
xadd(KEYS[4], a.maxlen, a.event)
if a.evictEvent then xadd(KEYS[4], a.maxlen, a.evictEvent) end
return perms
