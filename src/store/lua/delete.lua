-- Ends one session. KEYS: [1] the session, [2] its user's index, [3] the partition's events.
-- ARGV: the session's hash, the stream's approximate cap, then the event's fields.
-- Returns 1, or 0 when it had already ended (no event then).
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if n == 1 then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3)) end
return n
