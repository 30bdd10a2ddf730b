-- POST /api/agents/access for WRK_AGENT, rotating over the visitor tokens in WRK_TOKENS
-- (comma-separated): many visitors, each with their own code, as in real use.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"

local tokens = {}
for t in string.gmatch(os.getenv("WRK_TOKENS") or "", "[^,]+") do
   table.insert(tokens, t)
end
local next_token = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"agent_type": "' .. os.getenv("WRK_AGENT") .. '"}'

function request()
   next_token = next_token % #tokens + 1
   wrk.headers["Authorization"] = "Bearer " .. tokens[next_token]
   return wrk.format()
end
