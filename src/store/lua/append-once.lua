-- Appends an event relayed from the outbox once per outbox row, however often the relay retries.
-- KEYS: [1] the events, [2] the outbox marker. ARGV: the marker's TTL, the stream's approximate
-- cap, then the event's fields. Returns 1 appended, 0 already appended.
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
