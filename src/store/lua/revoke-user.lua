-- Ends every session of one user but one. KEYS: [1] the user's index, [2] the events, [3] the
-- outbox marker (or the index again when there is none), then [4..] the sessions, in the order of
-- `a.hashes` (the index as the caller read it). ARGV[1]: { hashes, except, marker, markerTtl,
-- openFrom, userTtlFloor, always, maxlen, event }.
-- Returns how many live sessions ended; -1 when the outbox row was applied before; -2 when the
-- index changed since the caller read it.
local a = cjson.decode(ARGV[1])
if not indexIs(KEYS[1], set(a.hashes)) then return -2 end
if a.marker and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ms(a.markerTtl)) then return -1 end
if a.openFrom > tonumber(redis.call('HGET', KEYS[1], 'c') or '0') then
  -- Raised, never lowered, so relays applied out of order leave the newest closure in force.
  redis.call('HSET', KEYS[1], 'c', a.openFrom)
  extend(KEYS[1], a.userTtlFloor)
end
local ended = 0
for i, h in ipairs(a.hashes) do
  if h ~= a.except then
    ended = ended + redis.call('DEL', KEYS[3 + i])
    redis.call('HDEL', KEYS[1], h)
  end
end
if ended > 0 or a.always then xadd(KEYS[2], a.maxlen, a.event) end
return ended
