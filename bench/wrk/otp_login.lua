-- POST /api/auth/login/otp with the code in WRK_CODE (a login does not spend a use).
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"otp_code": "' .. env_required("WRK_CODE") .. '"}'
