-- wrk script: an authenticated MCP `tools/call` of add(a, b) at protocol version 2025-11-25, which
-- needs no Mcp-Method/Mcp-Name headers. The token comes from BENCH_TOKEN (empty: no Authorization
-- header). When wrk is done, one JSON line with the numbers the runner reads.
--
-- BENCH_SESSION, when set, is the Mcp-Session-Id of a session the runner opened beforehand
-- (`initialize`, then `notifications/initialized`); every request carries it. All connections share
-- that one session, as one MCP client does: its HTTP pool spreads the calls it has in flight over
-- kept-alive connections, each call with the same Mcp-Session-Id and its own JSON-RPC id. (Many
-- clients would be many sessions; wrk cannot tie a session to a connection, but spreading the calls
-- over as many sessions as connections measured the same on toolgate in a quick check.)
--
-- Every request has its own JSON-RPC id, in both modes, as a client's requests do. In a session it
-- has to: the server routes a reply to its HTTP request by the id, and calls in flight with one id
-- leave all but one of them waiting forever (which wrk would not count as failed).
--
-- Every reply is read: one with a status below 400 that does not hold the sum (a JSON-RPC error, a
-- tool error, an SSE stream that ended without its message) counts as `wrong_replies`; wrk itself
-- counts those of 400 or more as `non_2xx`. Session replies are `text/event-stream`; the text
-- content is searched for in the body either way, so the same check serves JSON and SSE.

local token = os.getenv("BENCH_TOKEN") or ""
local session = os.getenv("BENCH_SESSION") or ""
local a = tonumber(os.getenv("BENCH_A") or "20")
local b = tonumber(os.getenv("BENCH_B") or "22")

local body_format = string.format(
  '{"jsonrpc":"2.0","id":%%d,"method":"tools/call","params":{"name":"add","arguments":{"a":%d,"b":%d}}}',
  a, b)
-- Both toolgate and FastMCP write the text content without spaces: `"text":"42"`.
local sum_text = string.format('"text":"%d"', a + b)

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
if session ~= "" then
  wrk.headers["Mcp-Session-Id"] = session
end

-- setup and done run in wrk's main Lua state, request and response in each thread's own.
local threads = {}

function setup(thread)
  -- Ids stay unique across threads: thread k counts from k * 2^32 + 1.
  thread:set("next_id", #threads * 4294967296)
  table.insert(threads, thread)
end

wrong = 0

function request()
  next_id = next_id + 1
  return wrk.format(nil, nil, nil, string.format(body_format, next_id))
end

function response(status, headers, body)
  if status < 400 and not string.find(body, sum_text, 1, true) then
    wrong = wrong + 1
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local wrong_replies = 0
  for _, thread in ipairs(threads) do
    wrong_replies = wrong_replies + thread:get("wrong")
  end
  -- Latencies are in microseconds; `status` counts replies with a status of 400 or more.
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.6f,"rps":%.3f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.3f,"bytes":%d,"non_2xx":%d,"wrong_replies":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.bytes, errors.status, wrong_replies, errors.connect, errors.read, errors.write, errors.timeout))
end
