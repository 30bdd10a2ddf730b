-- POST /api/agents/access for WRK_AGENT, rotating over the visitor tokens in WRK_TOKENS
-- (comma-separated): many visitors, each with their own code, as in real use. Each 2xx
-- spends one use; bench/run checks the count afterwards.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"

local tokens = env_list("WRK_TOKENS")
if #tokens == 0 then
   error("bench: WRK_TOKENS is not set (bench/run sets it)")
end
local next_token = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"agent_type": "' .. env_required("WRK_AGENT") .. '"}'

function request()
   next_token = next_token % #tokens + 1
   wrk.headers["Authorization"] = "Bearer " .. tokens[next_token]
   return wrk.format()
end
