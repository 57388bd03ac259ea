-- Counts a login attempt as failed in advance, unless a counter is at its limit. KEYS: [1] the
-- account's, [2] the account-and-client's, [3] the client's counters, then [4..6] a "refusal
-- noticed" marker for each. ARGV: the three limits, then the window in ms.
-- The check and the count are one step: attempts sent in parallel cannot all pass the check before
-- any is counted. A new counter is created with its window (SET NX PX), an existing one counted
-- (INCR); a later failure never pushes the window back. A refusal is taken back at once, and sets
-- its counter's marker for the rest of the window, so only a window's first refusal is announced.
-- Returns { ms to wait (0 when counted), 1 when this is the first refusal of its window }.
local counts = {}
for i = 1, 3 do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[4], 'NX') then counts[i] = 1
  else counts[i] = redis.call('INCR', KEYS[i]) end
end
local wait, first = 0, 0
for i = 1, 3 do
  if counts[i] > tonumber(ARGV[i]) then
    local ttl = math.max(redis.call('PTTL', KEYS[i]), 1)
    wait = math.max(wait, ttl)
    if redis.call('SET', KEYS[i + 3], '1', 'PX', ttl, 'NX') then first = 1 end
  end
end
if wait > 0 then
  for i = 1, 3 do
    if counts[i] == 1 then redis.call('DEL', KEYS[i]) else redis.call('DECR', KEYS[i]) end
  end
end
return { wait, first }
