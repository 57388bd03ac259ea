-- Counts one attempt against one counter, counted first and taken back when over the limit.
-- KEYS: [1] the counter. ARGV: the limit, the window in ms. Returns 0, or the ms to wait.
local n
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[2], 'NX') then n = 1 else n = redis.call('INCR', KEYS[1]) end
if n <= tonumber(ARGV[1]) then return 0 end
redis.call('DECR', KEYS[1])
return math.max(redis.call('PTTL', KEYS[1]), 1)
