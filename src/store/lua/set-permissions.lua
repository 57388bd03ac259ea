-- Rewrites the permissions of every live session of one user, unless a newer version is already
-- there, and announces the change once per outbox row. KEYS: [1] the user's index, [2] the events,
-- [3] the outbox marker, then [4..] the sessions in the order of `a.hashes` (the index as read).
-- ARGV[1]: { hashes, version, perms, userTtlFloor, markerTtl, maxlen, event }.
-- Returns 1 applied, 0 stale (a newer set is there), -1 replayed, -2 the index changed since read.
local a = cjson.decode(ARGV[1])
if not indexIs(KEYS[1], set(a.hashes)) then return -2 end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ms(a.markerTtl)) then return -1 end
local applied = 0
local stored = redis.call('HGET', KEYS[1], 'v')
-- Versions come from PostgreSQL; an older set arriving late (a retried relay) must not roll back.
if (not stored) or tonumber(stored) < a.version then
  redis.call('HSET', KEYS[1], 'v', a.version, 'p', a.perms)
  extend(KEYS[1], a.userTtlFloor)
  for i, h in ipairs(a.hashes) do
    local key = KEYS[3 + i]
    local value = redis.call('GET', key)
    if value then
      local t = split(value)
      t[3] = a.perms
      redis.call('SET', key, table.concat(t, '|'), 'KEEPTTL')
    else
      redis.call('HDEL', KEYS[1], h)
    end
  end
  applied = 1
end
xadd(KEYS[2], a.maxlen, a.event)
return applied
