-- Shared by every scenario script. Counts the answers by status in each wrk thread and,
-- when wrk is done, prints one line that bench/run reads:
--   bench: ok2xx=M non2xx=N statuses=401:3,503:2
-- (statuses lists the non-2xx codes seen). wrk's own "Non-2xx or 3xx responses" line
-- counts the same answers; bench/run compares the two.
--
-- The scripts read what bench/run passes in the environment:
--   WRK_TOKEN   a bearer token (admin or visitor, as the scenario says)
--   WRK_TOKENS  comma-separated visitor tokens (one per OTP)
--   WRK_CODE    an OTP code
--   WRK_AGENT   an agent id
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   ok2xx = 0
   non2xx = 0
   statuses = {}
end

function response(status, headers, body)
   if status >= 200 and status <= 299 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local ok, bad, by_status = 0, 0, {}
   for _, t in ipairs(threads) do
      ok = ok + t:get("ok2xx")
      bad = bad + t:get("non2xx")
      for status, n in pairs(t:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + n
      end
   end
   local codes = {}
   for status, n in pairs(by_status) do
      table.insert(codes, string.format("%d:%d", status, n))
   end
   table.sort(codes)
   io.write(string.format("bench: ok2xx=%d non2xx=%d statuses=%s\n", ok, bad,
                          table.concat(codes, ",")))
end

-- Splits a comma-separated environment variable into a list (empty when unset).
function env_list(name)
   local list = {}
   for item in string.gmatch(os.getenv(name) or "", "[^,]+") do
      table.insert(list, item)
   end
   return list
end

-- The environment variable's value; stops wrk with a message when it is unset or empty.
function env_required(name)
   local value = os.getenv(name)
   if value == nil or value == "" then
      error("bench: " .. name .. " is not set (bench/run sets it)")
   end
   return value
end
