-- Gives back an attempt counted in advance. KEYS: the three counters as in reserve-login.lua.
-- ARGV[1]: 1 after a success, which also clears the account-and-client counter.
-- A counter that reaches zero is removed rather than kept at 0, and one that expired meanwhile
-- (DECR made it -1) is removed too: no counter is ever left without its TTL, and the next failure
-- starts a new window.
local function uncount(key)
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
uncount(KEYS[1])
if ARGV[1] == '1' then redis.call('DEL', KEYS[2]) else uncount(KEYS[2]) end
uncount(KEYS[3])
return 0
