-- GET with the bearer token in WRK_TOKEN (GET /api/otps/ as the admin, GET /api/agents/list
-- as a visitor, ...).
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"

wrk.headers["Authorization"] = "Bearer " .. env_required("WRK_TOKEN")
