-- Records activity on a session. KEYS: [1] the session. ARGV: now, idle timeout, touch interval.
-- Returns the last-seen time afterwards (-1 when the session is gone); writes only when the stored
-- one is older than the touch interval, never past the absolute expiry.
local value = redis.call('GET', KEYS[1])
if not value then return -1 end
local t = split(value)
local expires = tonumber(t[4], 36)
local last = expires - tonumber(t[5], 36)
local now = tonumber(ARGV[1])
if now - last < tonumber(ARGV[3]) then return last end
t[5] = b36(expires - now)
redis.call('SET', KEYS[1], table.concat(t, '|'), 'PX', ms(math.max(1, math.min(tonumber(ARGV[2]), expires - now))))
return now
