-- POST /user/login, rotating through the JSON bodies in the file named by the first argument (one
-- user per line, so no account sees more than its share of logins).

dofile('report.lua')

local bodies = {}
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  index = math.random(#bodies)
end

function request()
  index = index % #bodies + 1
  return wrk.format('POST', nil, { ['Content-Type'] = 'application/json' }, bodies[index])
end
