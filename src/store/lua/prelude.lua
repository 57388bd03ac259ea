-- Shared by every store script (scripts.ts prepends it). A session record is `|`-separated
-- (record.ts); the fields of a user's index other than the meta fields are the hashes of the
-- user's sessions, with empty values: a session's own key expires with it, so EXISTS is all an
-- index entry needs.
local function isMeta(f) return f == 'v' or f == 'p' or f == 'c' end
local function split(s)
  local t = {}
  for p in (s .. '|'):gmatch('([^|]*)|') do t[#t + 1] = p end
  return t
end
local function ms(n) return string.format('%d', n) end
local function b36(n)
  n = math.floor(n)
  if n <= 0 then return '0' end
  local digits, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
  while n > 0 do
    local r = n % 36
    s = digits:sub(r + 1, r + 1) .. s
    n = math.floor(n / 36)
  end
  return s
end
-- Never shortens: GT sets only a later expiry; a key without one (just created) gets it plainly.
local function extend(key, ttl)
  if redis.call('PEXPIRE', key, ms(ttl), 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ms(ttl))
  end
end
-- The scripts that walk a user's sessions get them as KEYS, from an index the caller read just
-- before: true when the index still lists exactly those hashes (else the caller reads and retries).
local function indexIs(indexKey, expected)
  local seen = 0
  for _, f in ipairs(redis.call('HKEYS', indexKey)) do
    if not isMeta(f) then
      if not expected[f] then return false end
      seen = seen + 1
    end
  end
  local wanted = 0
  for _ in pairs(expected) do wanted = wanted + 1 end
  return seen == wanted
end
local function set(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end
local function xadd(key, maxlen, fields)
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
