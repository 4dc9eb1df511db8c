-- wrk script of BenchmarkUpdateCheckServe: each request is an update check
-- as react-native-code-push sends it (GET /v0.1/public/codepush/update_check),
-- from a different device each time (client_unique_id varies, as across a
-- fleet), and one check in four comes from a device that already runs the
-- current release (package_hash and label set, so nothing is available).
-- Arguments after "--": deployment key, current package hash, current label.
-- done() prints one RESULT line with exact figures (microseconds) and one
-- PCTL line: the latency at a grid of percentiles, from which the benchmark
-- merges the phases' distributions.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local key, hash, label
local n = 0

function init(args)
  key, hash, label = args[1], args[2], args[3]
end

function request()
  n = n + 1
  local q = "deployment_key=" .. key .. "&app_version=1.4.0&client_unique_id=device-" .. id .. "-" .. (n % 1000003)
  if n % 4 == 0 then
    q = q .. "&package_hash=" .. hash .. "&label=" .. label
  end
  return wrk.format("GET", "/v0.1/public/codepush/update_check?" .. q)
end

function print_result(summary, latency)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end

-- wrk answers 0 for percentile(100): the 100th is latency.max.
local grid = {50, 75, 90, 95, 96, 97, 98, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 99.99}

function done(summary, latency, requests)
  print_result(summary, latency)
  local parts = {}
  for _, p in ipairs(grid) do
    table.insert(parts, string.format("%g:%d", p, latency:percentile(p)))
  end
  table.insert(parts, string.format("100:%d", latency.max))
  io.write("PCTL " .. table.concat(parts, " ") .. "\n")
end
