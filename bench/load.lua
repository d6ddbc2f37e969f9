-- wrk script for the benchmark. Configured through the environment:
--   BENCH_MODE     "fixed" (the same POST every time) or "refresh" (rotate refresh tokens)
--   BENCH_PATH     request path, e.g. /token
--   BENCH_AUTH     Authorization header value (optional)
--   BENCH_BODY     form body for "fixed"
--   BENCH_RT_FILE  for "refresh": one initial refresh token per line, one line per wrk thread
--   BENCH_CLIENT_ID for "refresh": the public client's id
-- For "refresh", run wrk with as many threads as connections (-tN -cN): each thread then owns one
-- connection and one refresh chain, sends the refresh token it got in the previous response, and
-- so every request rotates the chain.
local mode = os.getenv("BENCH_MODE") or "fixed"
local path = os.getenv("BENCH_PATH") or "/token"
local auth = os.getenv("BENCH_AUTH")
local fixed_body = os.getenv("BENCH_BODY") or ""
local rt_file = os.getenv("BENCH_RT_FILE")
local client_id = os.getenv("BENCH_CLIENT_ID") or ""

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
if auth and auth ~= "" then headers["Authorization"] = auth end
rt = nil
chain_failures = 0

if mode == "refresh" then
  function init(args)
    local n = 0
    for line in io.lines(rt_file) do
      n = n + 1
      if n == id then rt = line end
    end
    if not rt then error("no refresh token for thread " .. tostring(id)) end
  end

  function request()
    return wrk.format("POST", path, headers,
      "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. rt)
  end
else
  -- The same request every time: wrk builds it once and sends that buffer, with no Lua call per
  -- request (a script that defines request() makes wrk call it for every request, which costs
  -- the load generator CPU that the server under test then does not get).
  wrk.method = "POST"
  wrk.path = path
  wrk.headers = headers
  wrk.body = fixed_body
end

if mode == "refresh" then
  function response(status, hdrs, body)
    local next_rt = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if next_rt then
      rt = next_rt
    elseif status == 200 then
      -- a 200 without a new refresh token (non-2xx answers are counted by wrk itself)
      chain_failures = chain_failures + 1
    end
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, t in ipairs(threads) do failures = failures + (t:get("chain_failures") or 0) end
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d chain_failures=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors, failures))
end
