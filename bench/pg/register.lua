-- wrk script for bench/pgbench.sh's `register` load: the same dynamic registration (RFC 7591) of
-- a confidential client_credentials client every time. wrk builds the request once (no request()
-- function, so no Lua call per request); each 201 is a new client written to the store.
wrk.method = "POST"
wrk.path = "/register"
wrk.headers = { ["Content-Type"] = "application/json" }
wrk.body = '{"client_name":"bench registration","grant_types":["client_credentials"],'
  .. '"token_endpoint_auth_method":"client_secret_basic","scope":"mail"}'

-- The same line as load.lua prints (chain_failures is always 0 here).
function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d chain_failures=0\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errors))
end
