-- Records a new proof of password on a live session (a record of the format before
-- re-authentication gets the part appended). KEYS: [1] the session, [2] the events.
-- ARGV[1]: { now, maxlen, event }. Returns 1, or 0 when the session is gone or expired.
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
local expires = tonumber(t[4], 36)
if expires <= a.now then return 0 end
t[9] = b36(expires - a.now)
redis.call('SET', KEYS[1], table.concat(t, '|'), 'KEEPTTL')
xadd(KEYS[2], a.maxlen, a.event)
return 1
