-- wrk script for the benchmark. Configured through the environment:
--   BENCH_MODE     "fixed" (the same POST every time) or "refresh" (rotate refresh tokens)
--   BENCH_PATH     request path, e.g. /token
--   BENCH_AUTH     Authorization header value (optional)
--   BENCH_BODY     form body for "fixed"
--   BENCH_RT_FILE  for "refresh": one initial refresh token per line, BENCH_CHAINS_PER_THREAD per thread
--   BENCH_CLIENT_ID for "refresh": the public client's id
--   BENCH_CHAINS_PER_THREAD for "refresh": chains per wrk thread, at least its connections plus one
-- For "refresh", each wrk thread takes its share of the chains (lines (id-1)*k+1 .. id*k) into a
-- queue of refresh tokens not in flight. A request takes the token at the head; its response puts
-- the new refresh token at the tail. A connection has one request in flight at a time and a thread
-- has more chains than connections, so the queue never runs dry, every request rotates a chain, and
-- no chain is ever used by two requests at once. The spare chain is there because wrk calls the
-- first thread's request() once before the run, to check the script, and never sends that request:
-- the chain it took is gone, and the thread still has one for each connection.
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
chain_failures = 0

if mode == "refresh" then
  local per_thread = tonumber(os.getenv("BENCH_CHAINS_PER_THREAD") or "1")
  local idle = {} -- refresh tokens of the chains with no request in flight, oldest first
  -- Stands in for a chain lost to an error (its answer carried no new token): the server refuses
  -- it, and wrk counts that as an error, so a broken run cannot pass for a good one.
  local lost = "lost-chain"

  function init(args)
    local n = 0
    for line in io.lines(rt_file) do
      n = n + 1
      if n > (id - 1) * per_thread and n <= id * per_thread then table.insert(idle, line) end
    end
    if #idle ~= per_thread then
      error("thread " .. tostring(id) .. " found " .. #idle .. " refresh tokens, needs " .. per_thread)
    end
  end

  function request()
    local rt = table.remove(idle, 1) or lost
    return wrk.format("POST", path, headers,
      "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. rt)
  end

  function response(status, hdrs, body)
    local next_rt = body and body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if next_rt then
      table.insert(idle, next_rt)
    else
      -- a 200 without a new refresh token (non-2xx answers are counted by wrk itself)
      if status == 200 then chain_failures = chain_failures + 1 end
      table.insert(idle, lost)
    end
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
