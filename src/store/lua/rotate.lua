-- Moves a live session to a new token (a password change). KEYS: [1] the old session, [2] the new
-- one, [3] the user's index, [4] the events. ARGV[1]: { oldHash, newHash, now, idle, maxlen,
-- event }. The record moves unchanged but for last-seen and the proof of password (a password
-- change proves it); the old key is gone in the same step, so no moment has both or neither.
-- Returns 1, or 0 when the session had already ended.
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
local expires = tonumber(t[4], 36)
if expires <= a.now then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], a.oldHash)
t[5] = b36(expires - a.now)
t[9] = b36(expires - a.now)
redis.call('SET', KEYS[2], table.concat(t, '|'), 'PX', ms(math.max(1, math.min(a.idle, expires - a.now))))
redis.call('HSET', KEYS[3], a.newHash, '')
extend(KEYS[3], expires - a.now)
xadd(KEYS[4], a.maxlen, a.event)
return 1
