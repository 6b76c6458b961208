-- wrk script: an authenticated MCP `tools/call` of add(a, b) at protocol version 2025-11-25, which
-- needs no Mcp-Method/Mcp-Name headers. The token comes from BENCH_TOKEN (empty: no Authorization
-- header). When wrk is done, one JSON line with the numbers the runner reads.

local token = os.getenv("BENCH_TOKEN") or ""
local a = tonumber(os.getenv("BENCH_A") or "20")
local b = tonumber(os.getenv("BENCH_B") or "22")

wrk.method = "POST"
wrk.body = string.format(
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":%d}}}',
  a, b)
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  -- Latencies are in microseconds; `status` counts replies with a status of 400 or more.
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.6f,"rps":%.3f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.3f,"bytes":%d,"non_2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.bytes, errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
