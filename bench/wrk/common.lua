-- Shared by every scenario: counts non-2xx answers in each wrk thread and prints the
-- totals as "non2xx=N ok2xx=M" at the end (bench/run reads them).
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   non2xx = 0
   ok2xx = 0
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   else
      ok2xx = ok2xx + 1
   end
end

function done(summary, latency, requests)
   local n, ok = 0, 0
   for _, t in ipairs(threads) do
      n = n + t:get("non2xx")
      ok = ok + t:get("ok2xx")
   end
   io.write(string.format("non2xx=%d ok2xx=%d\n", n, ok))
end
