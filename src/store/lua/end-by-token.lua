-- Ends the session of a token hash whose owner the caller read from it just before (logout, a
-- cookie presented at login). KEYS: [1] the session, [2] the owner's index, [3] the events.
-- ARGV[1]: { hash, uid, now, idle, maxlen, event }. Returns 1 when a live session ended; 0 when
-- there was none (an expired record is removed without an event); -2 when the record no longer
-- names that owner (the caller reads again).
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
if tonumber(t[1], 36) ~= a.uid then return -2 end
local expires = tonumber(t[4], 36)
local lastSeen = expires - tonumber(t[5], 36)
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], a.hash)
if a.now >= expires or a.now - lastSeen >= a.idle then return 0 end
xadd(KEYS[3], a.maxlen, a.event)
return 1
