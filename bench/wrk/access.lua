-- POST /api/agents/access for WRK_AGENT with the visitor token in WRK_TOKEN.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
wrk.body = '{"agent_type": "' .. os.getenv("WRK_AGENT") .. '"}'
