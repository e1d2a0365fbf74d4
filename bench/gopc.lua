-- wrk script for POST /v1/gopc: unique requestIds, fresh timestamps, per-status counts and an
-- optional per-request delay (set by bench/load.py) to hold a target rate.
-- The card number comes from the environment (a random test number made by bench/load.py).
-- PUSHPROV_BENCH_TAG prefixes the requestIds: Lua's random is unseeded, so concurrent wrk
-- processes (bench/scale.py) would otherwise send the same ids and get idempotent replays.
-- PUSHPROV_BENCH_COUNT_STATUSES=0 leaves out the per-status counts: wrk then hands no response
-- to Lua (~20 % of its CPU, which it shares with the server on 2 cores) and reports only
-- "2xx-3xx" and "4xx-5xx" from its own tally.
local threads = {}
local counter = 0
local pan = os.getenv("PUSHPROV_BENCH_PAN")
local key = os.getenv("PUSHPROV_BENCH_KEY")
local delay_ms = tonumber(os.getenv("PUSHPROV_BENCH_DELAY_MS") or "0")
local tag = os.getenv("PUSHPROV_BENCH_TAG") or "bench"
local count_statuses = os.getenv("PUSHPROV_BENCH_COUNT_STATUSES") ~= "0"

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"requestHeader":{"requestId":"%s-%d-%d-%d","requestTimestamp":"%d000"},' ..
    '"serverSessionId":"bench-session-%d","card":{"accountNumber":"%s",' ..
    '"expiryMonth":"12","expiryYear":"29"}}',
    tag, id, counter, math.random(1, 1000000000), os.time(), counter, pan)
  return wrk.format(nil, "/v1/gopc", nil, body)
end

-- wrk truncates the delay to whole milliseconds; rounding up or down at random, in proportion,
-- keeps the mean delay (and so the paced rate) right.
local delay_floor = math.floor(delay_ms)
local delay_fraction = delay_ms - delay_floor

function delay()
  if math.random() < delay_fraction then
    return delay_floor + 1
  end
  return delay_floor
end

if count_statuses then
  function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  if count_statuses then
    for _, thread in ipairs(threads) do
      local c = thread:get("counts")
      for status, n in pairs(c) do
        total[tostring(status)] = (total[tostring(status)] or 0) + n
      end
    end
  else
    total["2xx-3xx"] = summary.requests - summary.errors.status
    total["4xx-5xx"] = summary.errors.status
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%s":%d', status, n))
  end
  io.write(string.format(
    'BENCH {"statuses":{%s},"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"requests":%d,"seconds":%.3f,"errors":%d}\n',
    table.concat(parts, ","), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests,
    summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
