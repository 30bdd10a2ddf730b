-- POST /api/auth/login/otp with the code in WRK_CODE.
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua"
require "common"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"otp_code": "' .. os.getenv("WRK_CODE") .. '"}'
