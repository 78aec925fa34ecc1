-- wrk script for scripts/bench_serve.sh: POSTs the JPEG files given after `--` in turn to /predict and prints
-- one JSON line (requests, errors, latency percentiles) when done.
local bodies = {}
local n = 0

function init(args)
  for i, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    bodies[i] = f:read("*all")
    f:close()
  end
end

function request()
  n = n + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "image/jpeg"}, bodies[(n % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"socket_errors":%d,"non2xx":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
