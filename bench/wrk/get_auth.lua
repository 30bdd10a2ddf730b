-- GET with the bearer token in WRK_TOKEN.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
